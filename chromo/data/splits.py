"""Splits by cell, grouped by slide for pki3 (no slide on two sides), deterministic from a seed.

pki3 (and synthetic): about 80/10/10 of slides into train / val (the LFV gallery) / test; slides
holding an abnormal cell are split separately so that abnormal cells reach the test split.
bioimlab: the published protocol, 70 karyotypes for train+val and 49 for test (Poletti et al. 2008);
which 49 is not published with the data, so they are drawn from the seed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from chromo.data.manifest import cell_table
from chromo.io import atomic_write_text

SPLITS = ("train", "val", "test")


def _split_groups(groups: list, fractions, rng: np.random.Generator) -> dict:
    groups = list(groups)
    rng.shuffle(groups)
    n = len(groups)
    n_test = max(1, int(round(fractions[2] * n))) if n >= 3 else 0
    n_val = max(1, int(round(fractions[1] * n))) if n >= 3 else 0
    out = {g: "test" for g in groups[:n_test]}
    out.update({g: "val" for g in groups[n_test:n_test + n_val]})
    out.update({g: "train" for g in groups[n_test + n_val:]})
    return out


def make_splits(manifest: pd.DataFrame, seed: int = 0, fractions=(0.8, 0.1, 0.1),
                bioimlab_test_cells: int = 49) -> pd.DataFrame:
    """One row per cell: cell, slide, split, formula, abnormal, incomplete."""
    cells = cell_table(manifest)
    rng = np.random.default_rng(seed)
    dataset = manifest["dataset"].iloc[0]
    if dataset == "bioimlab":
        order = rng.permutation(len(cells))
        n_trval = len(cells) - bioimlab_test_cells
        n_val = max(1, int(round(fractions[1] / (fractions[0] + fractions[1]) * n_trval)))
        split = np.empty(len(cells), dtype=object)
        split[order[:bioimlab_test_cells]] = "test"
        split[order[bioimlab_test_cells:bioimlab_test_cells + n_val]] = "val"
        split[order[bioimlab_test_cells + n_val:]] = "train"
        cells["split"] = split
    else:
        odd = cells.groupby("slide")["abnormal"].any()
        slide_split = _split_groups(sorted(odd.index[odd]), fractions, rng)
        slide_split.update(_split_groups(sorted(odd.index[~odd]), fractions, rng))
        cells["split"] = cells["slide"].map(slide_split)
    return cells[["cell", "slide", "split", "formula", "abnormal", "incomplete"]]


def subset(splits: pd.DataFrame, max_cells: dict | None) -> pd.DataFrame:
    """Keep the first n cells of each split (abnormal cells first in test), for quick profiles."""
    if not max_cells:
        return splits
    parts = []
    for name in SPLITS:
        part = splits[splits["split"] == name]
        if name == "test":
            part = part.sort_values("abnormal", ascending=False, kind="stable")
        parts.append(part.head(int(max_cells.get(name, len(part)))))
    return pd.concat(parts).reset_index(drop=True)


FOLD_SEED = 0   # the folds do not follow the run's seed: seed repeats and every setting share them


def fold(splits: pd.DataFrame, k: int, n_folds: int) -> pd.DataFrame:
    """Cross-validation over the cells outside the test split: their slides (for BioImLab, one per cell)
    dealt into `n_folds` folds in a fixed shuffled order (FOLD_SEED); fold `k` becomes the validation split,
    the other folds the training split. The test split is untouched, so test cells never enter a fold."""
    inner = splits["split"].isin(["train", "val"])
    slides = sorted(splits.loc[inner, "slide"].astype(str).unique())
    if len(slides) < n_folds:
        raise ValueError(f"val_fold: {len(slides)} slides outside the test split cannot fill {n_folds} folds")
    order = np.random.default_rng(FOLD_SEED).permutation(len(slides))
    in_fold = {slides[j] for i, j in enumerate(order) if i % n_folds == k}
    out = splits.copy()
    out.loc[inner, "split"] = np.where(out.loc[inner, "slide"].astype(str).isin(in_fold), "val", "train")
    return out


def save_splits(splits: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, splits.to_csv(index=False))


def load_or_make(cfg, dataset: str, manifest: pd.DataFrame) -> pd.DataFrame:
    """The profile's split file (results/<profile>/splits/<dataset>.csv), made once and then reused; with
    cfg.data.val_fold = [k, K], its train and val cells re-dealt into fold k of K (`fold`; the file keeps the
    profile's own split)."""
    path = cfg.results() / "splits" / f"{dataset}.csv"
    if path.exists():
        s = pd.read_csv(path, dtype={"cell": str, "slide": str})
        if not set(s["cell"]) <= set(manifest["cell"]):
            raise ValueError(f"{path}: lists cells missing from the {dataset} data; delete it to re-split")
    else:
        s = subset(make_splits(manifest, cfg.seed, cfg.data.split_fractions, cfg.data.bioimlab_test_cells),
                   cfg.data.max_cells)
        save_splits(s, path)
    return fold(s, *cfg.data.val_fold) if cfg.data.val_fold else s
