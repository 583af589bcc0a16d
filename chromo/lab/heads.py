"""Table 4 within a CPU budget: the Extended Block variants (uXcY) trained as heads on one frozen backbone.

The paper trains each variant end to end (Table 4). Here the backbone of one trained EResNet run is kept
frozen; its pooled features of the training, validation and test images (the run's feature files) are the
input of each variant's Extended Block and final FC, trained with the same softmax + alpha * center loss
(eq. 3) in seconds. This isolates what the block does on top of a fixed backbone; it is not the paper's
end-to-end comparison, which stays in the gpu profile.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from chromo import N_CLASSES, PAPER_MODEL
from chromo.data.loader import NATIVE_QUERY, batches
from chromo.evaluate import cell_accuracy, predictions_from
from chromo.losses import CenterLoss, joint_loss
from chromo import EXTENDED, TABLE4_VARIANTS
from chromo.models import ExtendedHead
from chromo.inference import extract_features
from chromo.run import Run
from chromo.train import lr_at


TRAIN_CELL_EVERY = 4   # the heads train on every 4th training cell: a quarter of the extraction time
CLIP = 5.0             # gradient-norm clip of the head's parameters


def backbone_features(run: Path, progress: bool = False) -> dict:
    """{split: feature dict} of the run's backbone features (c0) for train, val and test; the training
    split's file is written once when missing (native query style, every TRAIN_CELL_EVERY-th cell)."""
    run = Run(run)
    cfg, dataset, model = run.settings()
    if EXTENDED.match(model) is None or EXTENDED.match(model).group(2) != "0":
        raise ValueError(f"{run}: heads need a run whose feature is the backbone output (eresnet-uXc0)")
    q = NATIVE_QUERY[dataset]
    sub = f"train-every{TRAIN_CELL_EVERY}"
    if not run.has_features(sub, q):
        extract_features(run, "train", progress, queries=(q,), cell_every=TRAIN_CELL_EVERY)
    out = {"train": {q: run.features(sub, q)}, "val": {q: run.features("val", q)}}
    out["test"] = {k: run.features("test", k) for k in ("ki", "mi") if run.has_features("test", k)}
    return out


class FrozenBackboneHead(torch.nn.Module):
    """An Extended Block + FC on fixed backbone features, standardised per dimension with the training
    set's mean and spread (without it, the center loss on a deep block's FC output collapsed the features
    and u3c2 did not learn); a c0 variant's feature vector stays the backbone's own."""

    def __init__(self, block: ExtendedHead, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.block, self.feature_dim = block, block.feature_dim
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):                                    # x: [B, D] backbone features
        logits, feat = self.block((x - self.mean) / self.std)
        return logits, (x if self.block.feature_at == 0 else feat)


def train_head(variant: str, train: dict, cfg, epochs: int, seed: int | None = None, *,
               dataset: str) -> tuple[FrozenBackboneHead, list]:
    """One variant's Extended Block + FC trained on fixed features (softmax + alpha * center loss, eq. 3,
    alpha ramped as in the profile; SGD at the data set's rate (Config.lr_for) with warm-up and cosine decay).
    Returns the head (eval mode) and the softmax loss per epoch."""
    units, at = int(variant[1]), int(variant[3])
    torch.manual_seed(cfg.seed if seed is None else seed)
    x = torch.as_tensor(train["features"], dtype=torch.float32)           # [N, D]
    y = torch.as_tensor(train["labels"] - 1, dtype=torch.long)            # 0-based classes
    head = FrozenBackboneHead(ExtendedHead(x.shape[1], units, at, cfg.training.hidden, cfg.training.dropout),
                              x.mean(0), x.std(0) + 1e-6)
    center = CenterLoss(N_CLASSES, head.feature_dim, cfg.training.center_lr)
    lr = cfg.lr_for(PAPER_MODEL, dataset)
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=cfg.training.momentum,
                          weight_decay=cfg.training.weight_decay,
                          nesterov=True)
    bs = 256
    steps = epochs * -(-len(x) // bs)
    step, losses = 0, []
    gen = torch.Generator().manual_seed(cfg.seed if seed is None else seed)
    for _ in range(epochs):
        head.train()
        total = 0.0
        for idx in batches(len(x), bs, gen):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr, min(100, steps // 10 + 1))
            logits, feats = head(x[idx])
            ramp = min(1.0, step / (cfg.training.alpha_warmup_epochs * steps
                                    / epochs)) if cfg.training.alpha_warmup_epochs else 1.0
            loss, ls, _ = joint_loss(logits, feats, y[idx], center, cfg.training.alpha * ramp,
                                     cfg.training.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # the center loss on an FC output can blow up
            torch.nn.utils.clip_grad_norm_(head.parameters(), CLIP)
            opt.step()
            center.update(feats, y[idx])
            total += ls.item() * len(idx)
            step += 1
        losses.append(total / len(x))
    return head.eval(), losses


@torch.no_grad()
def apply_head(head: FrozenBackboneHead, feats: dict) -> dict:
    """A feature dict with the head's logits and its feature vector (at cY) in place of the run's."""
    logits, f = head(torch.as_tensor(feats["features"], dtype=torch.float32))
    return {**feats, "logits": logits.numpy(), "features": f.numpy()}


def table4(run: Path, cfg=None, variants=TABLE4_VARIANTS, epochs: int = 15, beta: int = 40,
           progress: bool = True) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Each variant's head trained on the run's frozen backbone, then scored on the test cells per query
    style: mean per-cell accuracy (eq. 9) of DCNN, FVM, LFV, LFV + LRd (cosine) and the assignment; {variant:
    softmax loss per epoch}; and the per-cell accuracies behind them (variant, query, method, cell,
    accuracy)."""
    from tqdm import tqdm

    run_cfg, dataset, _ = Run(run).settings()
    cfg = cfg or run_cfg
    m = cfg.matching
    native = NATIVE_QUERY[dataset]
    f = backbone_features(run, progress)
    rows, curves, cells = [], {}, []
    for v in tqdm(variants, desc="Table 4 heads", disable=None if progress else True):
        t0 = time.time()
        head, curves[v] = train_head(v, f["train"][native], cfg, epochs, dataset=dataset)
        secs = time.time() - t0
        val = apply_head(head, f["val"][native])
        test = {q: apply_head(head, d) for q, d in f["test"].items()}
        pred = predictions_from(val, test, native, m.gamma, beta, ("cosine",), m.extra_penalty,
                                m.missing_penalty, Run(run).size_prior(), str(run))
        for (q, method), g in pred.groupby(["query", "method"]):
            per_cell = cell_accuracy(g)
            cells.append(pd.DataFrame({"variant": v, "query": q, "method": method, "cell": per_cell.index,
                                       "accuracy": per_cell.to_numpy()}))
            rows.append({"variant": v, "query": q, "method": method, "accuracy": float(per_cell.mean()),
                         "feature_dim": head.feature_dim, "train_s": round(secs, 1)})
    return pd.DataFrame(rows), curves, pd.concat(cells, ignore_index=True)
