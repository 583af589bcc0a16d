"""Cells the chapters classify with `chromo classify`'s Classifier: an example cell (a trisomy 21 test cell,
or one constructed), every test cell a data set's folder holds, and a table of their results."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from chromo import karyotype
from chromo.classify import MAX_OBJECTS, MIN_OBJECTS, Classifier, cell_files


def example_cell(cfg, cell: str | None, work: Path) -> tuple[Path, str, str]:
    """A pki3 cell folder to classify: `cell` when given, else a trisomy 21 test cell, else one constructed
    from a normal XY (or XX) test cell plus one chromosome 21 of another test cell, preferably from
    another slide (copied under `work`/input; the data directory is never written).
    Returns (folder, cell name, where it comes from)."""
    from chromo.data.loader import prepare

    splits = prepare(cfg, "pki3", progress=False).splits
    test = splits[splits["split"] == "test"]
    cells_dir = cfg.data_root() / "pki3" / "single_clase"
    trisomy = test[test["formula"].str.contains(r"\+21")]
    if cell is None and len(trisomy):
        cell = trisomy["cell"].iloc[0]
    if cell is not None:
        return cells_dir / f"{cell}.tiff", cell, f"split {splits.set_index('cell').loc[cell, 'split']}"
    normal = test[test["formula"].isin(karyotype.NORMAL_FORMULAS)]
    base = (normal if len(normal) else test)["cell"].iloc[0]
    base_slide = test.set_index("cell").loc[base, "slide"]
    # other slides first
    others = test[test["cell"] != base].sort_values("slide", key=lambda s: s == base_slide)
    donor = next(c for c in others["cell"] if any((cells_dir / f"{c}.tiff" / "clase21").glob("*.tif*")))
    cell = f"{base}+21from{donor}"
    folder = Path(work) / "input" / cell
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(cells_dir / f"{base}.tiff", folder)
    extra = sorted((cells_dir / f"{donor}.tiff" / "clase21").iterdir())[0]
    shutil.copy(extra, folder / "clase21" / extra.name)
    return folder, cell, "constructed from test cells"


def test_cells(cfg, dataset: str) -> list[tuple[str, Path]]:
    """(cell, folder in the data directory) of every test cell of `dataset` that the command accepts
    (MIN_OBJECTS..MAX_OBJECTS images), in the split's order."""
    from chromo.data.loader import prepare

    man = prepare(cfg, dataset, progress=False).manifest
    test = man[man["split"] == "test"]
    return [(cell, cfg.data_root().joinpath(*g["path"].iloc[0].split("/")[:3]))    # <dataset>/<folder>/<cell>
            for cell, g in test.groupby("cell", sort=False) if MIN_OBJECTS <= len(g) <= MAX_OBJECTS]


def classify_cells(clf: Classifier, cells: list[tuple[str, Path]]) -> pd.DataFrame:
    """Classifier.classify on each (cell, folder), the model loaded once: one row per cell with its true and
    reported formula, the share of its chromosomes right, its flags and the seconds it took."""
    import time

    from tqdm import tqdm

    rows = []
    for cell, folder in tqdm(cells, desc="classify", disable=None, mininterval=5):
        t = time.perf_counter()
        _, rep, _ = clf.classify(cell_files(folder)[0])
        rows.append({"cell": cell, "chromosomes": rep["chromosomes"], "true_formula": rep.get("true_formula",
                                                                                              ""),
                     "formula": rep["formula"], "accuracy": rep.get("accuracy", np.nan),
                     "flags": "; ".join(rep["flags"]), "seconds": time.perf_counter() - t})
    return pd.DataFrame(rows)
