"""Cell context (beyond the paper): a small learned layer that lets each chromosome's logits see the rest of
its metaphase cell, before the karyotype assignment (chromo.cell.assign_cells) reads them.

Per chromosome a token: its backbone features (standardised with the training set's mean and spread), its
log-softmax and its relative size (chromo.karyotype.relative_size: log(area / median area of its cell)).
Tokens of ONE cell attend to each other (no positional encoding: shuffling a cell's chromosomes shuffles its
outputs; a padding mask keeps cells apart) and the layer outputs a correction: logits' = logits + delta, with
delta's last layer zero at initialisation, so an untrained layer is the identity. Kinds:

    "attention"  self-attention over the cell's tokens (`layers` pre-norm Transformer layers), then delta;
                 features=False: tokens of log-softmax and relative size only
    "cellnorm"   features minus the cell's mean feature, over the cell's spread, and the relative size,
                 then one linear layer
    "linear"     features and relative size, one linear layer: the same fit without context (the ablation)

Trained on training cells only (cross-entropy with label smoothing, or the assignment's structured hinge
loss), a fixed number of epochs, seeded, on one CPU thread. chromo.lab.context_study measures it on the
validation cells; no profile uses it (it did not beat the assignment without it). `save` keeps a layer the
study adopts as context.pt in its run directory ({"config": the constructor's arguments, "state": its state
dict}) and `load` reads it back; the main job and `chromo classify` read no such file.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chromo import N_CLASSES
from chromo.cell import size_costs
from chromo.io import atomic_torch_save
from chromo.karyotype import assign_karyotype, relative_size
from chromo.run import CheckpointError, load_checkpoint

FILE = "context.pt"
KINDS = ("attention", "cellnorm", "linear")
LOSSES = ("ce", "assign")


class CellContext(nn.Module):
    """logits' = logits + delta(cell) for padded cells: forward(feats [B, L, D], logits [B, L, 24],
    rel [B, L], pad [B, L] True where no chromosome) -> [B, L, 24]."""

    def __init__(self, kind: str = "attention", feature_dim: int = 512, dim: int = 64, layers: int = 1,
                 heads: int = 4, dropout: float = 0.1, features: bool = True):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"context kind {kind!r}: one of {KINDS}")
        self.config = dict(kind=kind, feature_dim=feature_dim, dim=dim, layers=layers, heads=heads,
                           dropout=dropout, features=features)
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        if kind == "attention":
            self.embed = nn.Linear(feature_dim * features + N_CLASSES + 1, dim)
            self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(
                dim, heads, 2 * dim, dropout, batch_first=True, norm_first=True) for _ in range(layers))
            self.norm, self.out = nn.LayerNorm(dim), nn.Linear(dim, N_CLASSES)
        else:
            self.drop, self.out = nn.Dropout(dropout), nn.Linear(feature_dim + 1, N_CLASSES)
        nn.init.zeros_(self.out.weight)          # delta = 0: the identity at initialisation
        nn.init.zeros_(self.out.bias)

    def forward(self, feats, logits, rel, pad):
        x = (feats - self.mean) / self.std
        if self.config["kind"] == "cellnorm":
            x = _cell_standardise(x, pad)
        if self.config["kind"] != "attention":
            return logits + self.out(self.drop(torch.cat([x, rel[..., None]], -1)))
        parts = [x] * self.config["features"] + [torch.log_softmax(logits, -1), rel[..., None]]
        h = self.embed(torch.cat(parts, -1))
        for block in self.blocks:
            h = block(h, src_key_padding_mask=pad)
        return logits + self.out(self.norm(h))


def _cell_standardise(x, pad):
    """Each cell's features minus the cell's mean feature, over its spread (per dimension, over the cell's
    chromosomes, padding excluded): [B, L, D]."""
    keep = (~pad)[..., None].float()
    n = keep.sum(1, keepdim=True).clamp(min=1)
    mean = (x * keep).sum(1, keepdim=True) / n
    var = (((x - mean) * keep) ** 2).sum(1, keepdim=True) / n
    return (x - mean) / (var + 1e-2).sqrt() * keep


def pack(f: dict, prior: dict | None = None) -> tuple[dict, np.ndarray]:
    """A feature dict's chromosomes as padded cells: ({feats, logits, rel, pad} tensors [B, L, ...],
    index [B, L] into the dict's rows, -1 for padding). rel is the relative size (0 for a chromosome of
    area 0: unknown, left out of its cell's median); size [B, L, 24] the assignment's relative-size cost
    (chromo.cell.size_costs) of `prior`, zeros without one."""
    cells = np.asarray(f["cells"])
    names, inverse = np.unique(cells, return_inverse=True)
    groups = [np.flatnonzero(inverse == b) for b in range(len(names))]
    areas = np.asarray(f["areas"], float) if "areas" in f else np.zeros(len(cells))
    rel, known = np.zeros(len(cells)), areas > 0
    if known.any():
        rel[known] = relative_size(areas[known], cells[known])
    index = np.full((len(groups), max((len(g) for g in groups), default=0)), -1)
    for b, g in enumerate(groups):
        index[b, :len(g)] = g
    take = lambda a: torch.as_tensor(np.asarray(a, np.float32)[np.maximum(index, 0)])  # noqa: E731
    pad = torch.as_tensor(index < 0)
    size = size_costs({"areas": areas, "cells": cells}, prior) if prior else None
    return {"feats": take(f["features"]), "logits": take(f["logits"]), "rel": take(rel) * ~pad, "pad": pad,
            "size": take(np.zeros((len(cells), N_CLASSES)) if size is None else size)}, index


def _targets(f: dict, index: np.ndarray) -> torch.Tensor:
    """Class indices 0..23 [B, L] of the packed chromosomes, -100 (ignored) for padding."""
    y = np.asarray(f["labels"], int)[np.maximum(index, 0)] - 1
    return torch.as_tensor(np.where(index < 0, -100, y))


def _concat(dicts: list[dict]) -> dict:
    """One feature dict from several (cells renamed per dict, so two files' cells never merge; a dict without
    areas gets 0: unknown size)."""
    keys = ("features", "logits", "labels")
    out = {k: np.concatenate([np.asarray(d[k]) for d in dicts]) for k in keys}
    out["areas"] = np.concatenate([np.asarray(d["areas"], float) if "areas" in d
                                   else np.zeros(len(d["labels"])) for d in dicts])
    out["cells"] = np.concatenate([np.char.add(f"{i}:", np.asarray(d["cells"]).astype(str))
                                   for i, d in enumerate(dicts)])
    return out


def assignment_loss(out, y, pad, size, margin: float = 1.0, extra_penalty: float = 4.0,
                    missing_penalty: float = 4.0) -> torch.Tensor:
    """The structured hinge (perceptron) loss of the karyotype assignment, mean over chromosomes: with c the
    assignment's cost [B, L, 24] (-log softmax of `out` plus the size cost `size`), each cell's labels `a`
    from assign_karyotype on c minus `margin` for every wrong class (loss-augmented), and the loss
    sum_i c_i(y_i) - c_i(a_i): 0 with no gradient where the margin-augmented assignment is already right."""
    cost = -torch.log_softmax(out, -1) + size
    wrong = torch.ones_like(cost).scatter_(-1, y.clamp(min=0)[..., None], 0.0)
    aug = (cost - margin * wrong).detach().numpy()
    a = y.clone()
    for b in range(len(y)):
        keep = np.flatnonzero(~pad[b].numpy())
        got = assign_karyotype(aug[b, keep], extra_penalty, missing_penalty)["labels"]
        a[b, keep] = torch.as_tensor(got) - 1
    gap = cost.gather(-1, y.clamp(min=0)[..., None]) - cost.gather(-1, a.clamp(min=0)[..., None])
    return (gap[..., 0] * ~pad).sum() / (~pad).sum()


def fit(train: list[dict], kind: str = "attention", epochs: int = 20, cells_per_batch: int = 8,
        lr: float = 1e-3, weight_decay: float = 1e-2, label_smoothing: float = 0.1, seed: int = 0,
        loss: str = "ce", prior: dict | None = None, margin: float = 1.0,
        **arch) -> tuple[CellContext, list[dict]]:
    """The cell-context layer trained on the feature dicts of training cells (features, logits, labels,
    cells, areas): AdamW with a one-cycle schedule, `epochs` passes over the cells in batches of
    `cells_per_batch` cells, seeded. loss "ce": cross-entropy with label smoothing on the corrected logits;
    "assign": assignment_loss, with the relative-size cost of `prior` (Run.size_prior) and `margin`.
    Runs on one CPU thread (the layer is tiny: more threads only add overhead). Returns (model in eval mode,
    log: one row per epoch with its mean loss and the seconds so far)."""
    if loss not in LOSSES:
        raise ValueError(f"context loss {loss!r}: one of {LOSSES}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(train, kind, epochs, cells_per_batch, lr, weight_decay, label_smoothing, seed, loss,
                    prior, margin, arch)
    finally:
        torch.set_num_threads(threads)


def _fit(train, kind, epochs, cells_per_batch, lr, weight_decay, label_smoothing, seed, loss, prior, margin,
         arch) -> tuple[CellContext, list[dict]]:
    """fit's training loop, its arguments in order."""
    torch.manual_seed(seed)
    f = _concat(train)
    x, index = pack(f, prior)
    y = _targets(f, index)
    model = CellContext(kind, feature_dim=x["feats"].shape[-1], **arch)
    keep = ~x["pad"]
    model.mean.copy_(x["feats"][keep].mean(0))
    model.std.copy_(x["feats"][keep].std(0).clamp(min=1e-3))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(epochs * -(-len(index) // cells_per_batch), 1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    ce, gen, log, t0 = nn.CrossEntropyLoss(label_smoothing=label_smoothing), \
        torch.Generator().manual_seed(seed), [], time.perf_counter()
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for b in torch.randperm(len(index), generator=gen).split(cells_per_batch):
            out = model(x["feats"][b], x["logits"][b], x["rel"][b], x["pad"][b])
            value = ce(out.reshape(-1, N_CLASSES), y[b].reshape(-1)) if loss == "ce" else \
                assignment_loss(out, y[b], x["pad"][b], x["size"][b], margin)
            opt.zero_grad()
            value.backward()
            opt.step()
            sched.step()
            total += value.item() * len(b)
        log.append({"epoch": epoch + 1, "loss": total / len(index), "seconds": time.perf_counter() - t0})
    return model.eval(), log


@torch.no_grad()
def apply(model: CellContext, f: dict) -> np.ndarray:
    """The corrected logits [N, 24] of a feature dict's chromosomes (rows in the dict's order), each cell
    seeing only its own chromosomes."""
    x, index = pack(f)
    out = np.zeros((len(np.asarray(f["cells"])), N_CLASSES), np.float32)
    if index.size:
        got = model.eval()(x["feats"], x["logits"], x["rel"], x["pad"]).numpy()
        out[index[index >= 0]] = got[index >= 0]
    return out


def save(model: CellContext, run_dir) -> Path:
    """context.pt in the run directory: {"config", "state"} (atomic write; read back with `load`)."""
    payload = {"config": dict(model.config), "state": model.state_dict()}
    return atomic_torch_save(Path(run_dir) / FILE, payload)


def load(run_dir) -> CellContext | None:
    """The run's cell-context layer (eval mode), or None where the run has no context.pt."""
    path = Path(run_dir) / FILE
    if not path.exists():
        return None
    ck = load_checkpoint(path)
    try:
        model = CellContext(**ck["config"])
        model.load_state_dict(ck["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a cell-context layer ({type(e).__name__}: {e})") from e
    return model.eval()
