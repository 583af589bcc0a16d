"""Inference with a trained model: logits and features of canvas images (optionally averaged over flips),
and the feature files of a run's splits that every analysis reads."""
from __future__ import annotations

import numpy as np
import torch

from chromo import N_CLASSES, device
from chromo.data.canvas import object_areas
from chromo.data.loader import NATIVE_QUERY, batches, mi_queries, prepare, to_tensor
from chromo.karyotype import fit_size_model, relative_size
from chromo.run import CheckpointError, Run


def autocast(cfg):
    """bf16 autocast on the package's device when the profile asks for it (cfg.training.bf16)."""
    return torch.autocast(device().type, dtype=torch.bfloat16, enabled=cfg.training.bf16)


@torch.no_grad()
def predict(net, images: np.ndarray, cfg, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(logits [N, 24], features [N, D]) as float32 numpy, in eval mode. With cfg.training.tta, both are the
    mean over the image and its horizontal, vertical and double flips (which end is up is not known)."""
    net.eval()
    if cfg.training.channels_last:          # weights in the inputs' memory format: 1.5x (bench inference)
        net = net.to(memory_format=torch.channels_last)
    dev = device()
    logits, feats = [], []
    for idx in batches(len(images), batch_size):
        x = to_tensor(images[idx]).to(dev)                           # [B, 1, H, W]
        views = [x, x.flip(-1), x.flip(-2), x.flip(-1, -2)] if cfg.training.tta else [x]
        lo, fe = 0, 0
        for v in views:
            if cfg.training.channels_last:
                v = v.contiguous(memory_format=torch.channels_last)
            with autocast(cfg):
                a, b = net(v)
            lo, fe = lo + a.float() / len(views), fe + b.float() / len(views)
        logits.append(lo.cpu())
        feats.append(fe.cpu())
    if not logits:
        return np.zeros((0, N_CLASSES), np.float32), np.zeros((0, getattr(net, "feature_dim", 0)), np.float32)
    return torch.cat(logits).numpy(), torch.cat(feats).numpy()


def fit_size_prior(prep, weight: float) -> dict:
    """The relative-size prior of the karyotype assignment (chromo.karyotype.size_cost), its per-class model
    fitted on the training split's chromosomes (areas on the canvas, relative to their cell's median)."""
    tr = prep.split("train")
    rel = relative_size(object_areas(tr.images), tr.cells)
    return {"weight": float(weight), **fit_size_model(rel, tr.labels),
            "fitted_on": f"{prep.dataset} training split: {len(tr)} chromosomes, {len(np.unique(tr.cells))} "
                         "cells"}


def _size_prior_for(run, prep, weight: float, keep: bool) -> dict:
    """The run's size_prior.json to write: fitted on the training split at `weight` (with `keep`, the weight
    the run's readable file has wins over the config's, so `chromo features` keeps it). Off (weight 0), a
    split that cannot be fitted (a class with under two chromosomes) is noted instead of stopping."""
    if not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"size prior weight {weight!r}: a number >= 0 expected (0: off)")
    if keep:
        try:
            weight = (run.size_prior() or {}).get("weight", weight)
        except CheckpointError:
            pass                                       # an unreadable file: written anew below
    try:
        return fit_size_prior(prep, weight)
    except ValueError as e:
        if weight:
            raise ValueError(f"{run.path}: the size prior (weight {weight}) cannot be fitted: {e}") from e
        return {"weight": 0.0, "fitted_on": f"not fitted ({e})"}


def extract_features(run, split: str = "test", progress: bool = True, queries=None,
                     cell_every: int = 1, size_prior: float | None = None) -> list:
    """Features, logits, labels, cells and chromosome areas (data.canvas.object_areas) of one split, for each
    query style of the dataset: the native one (KI for pki3, MI for bioimlab) and, for KI data, simulated MI
    versions of the same chromosomes (`queries`, e.g. ("ki",), limits the styles; `cell_every` = k keeps
    every k-th cell in sorted order). Written as the run's feature files; returns their paths. The run's
    size_prior.json (Run.size_prior) is written too, with weight `size_prior` (None: the weight the run's file
    has, else the run's config's; `chromo features --size-prior W` sets it)."""
    run = Run(run)
    cfg, dataset, _ = run.settings()
    net, _ = run.load_model(device())
    prep = prepare(cfg, dataset, progress)
    s = prep.split(split)
    run.save_size_prior(_size_prior_for(run, prep, cfg.size_prior_for(dataset) if size_prior is None
                                        else size_prior,
                                        keep=size_prior is None))
    if cell_every > 1:
        keep = np.isin(s.cells, np.unique(s.cells)[::cell_every])
        s = type(s)(s.images[keep], s.labels[keep], s.cells[keep], s.paths[keep], s.index[keep])
    wanted = set(queries or ("ki", "mi"))
    native = NATIVE_QUERY[dataset]
    styles = {native: s.images} if native in wanted else {}
    if native == "ki" and "mi" in wanted:
        styles["mi"] = mi_queries(s.images, cfg)
    out = []
    for q, imgs in styles.items():
        logits, feats = predict(net, imgs, cfg)
        # a subset never takes the full name
        name = split if cell_every == 1 else f"{split}-every{cell_every}"
        out.append(run.save_features(name, q, features=feats, logits=logits, labels=s.labels, cells=s.cells,
                                     paths=s.paths, index=s.index, areas=object_areas(imgs)))
    return out
