"""`chromo classify`: karyotype one cell (or a folder of cells) from single-chromosome images.

Input: a cell folder in either public layout (pki3 claseK/ sub-folders, bioimlab '<cell> <K>[a|b].bmp')
or a plain folder of image files; or a folder whose sub-folders are such cells. Output per cell:
assignments.csv, karyotype.json, karyogram.png, written to a temporary folder and renamed into place.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from chromo import class_name, karyotype
from chromo.data.canvas import normalise, place
from chromo.data import manifest
from chromo.data.loader import NATIVE_QUERY
from chromo.data.manifest import DataError
from chromo.matching import (assign_karyotype, label_feature_vectors, label_redistribution, lfv_distances,
                             predict_lfv, softmax)
from chromo.train import CheckpointError, load_features, load_model, load_run, predict

IMAGE_SUFFIXES = {".tif", ".tiff", ".bmp", ".png", ".jpg", ".jpeg"}
MIN_OBJECTS, MAX_OBJECTS = 30, 60
IGNORED = {"SHA256SUMS", ".DS_Store", "Thumbs.db"}


class InputError(ValueError):
    """Bad input for classify; the message names the folder or file."""


def _true_label(path: Path) -> int | None:
    """The class a public layout gives a file (pki3 claseK folder, bioimlab '<cell> <K>[ab].bmp'), if any."""
    m = re.match(r"^clase(\d+)$", path.parent.name, re.I) or re.match(r"^\S+ (\d+)[ab]?\.bmp$", path.name, re.I)
    return int(m.group(1)) if m and 1 <= int(m.group(1)) <= 24 else None


def cell_name(files) -> str:
    """The cell folder's name (above pki3's claseK folders)."""
    parent = Path(sorted(files)[0]).parent
    return parent.parent.name if re.match(r"^clase\d+$", parent.name, re.I) else parent.name


def cell_files(folder: Path, skip_non_images: bool = False) -> tuple[list[Path], list[str]]:
    """Image files of one cell folder (recursing into pki3's claseK folders). Non-image files are an
    error unless skip_non_images, then returned as skipped."""
    files, skipped = [], []
    for p in sorted(folder.rglob("*")):
        if p.is_dir() or p.name in IGNORED:
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        elif skip_non_images:
            skipped.append(str(p))
        else:
            raise InputError(f"{p}: not an image file (expected {', '.join(sorted(IMAGE_SUFFIXES))}); "
                             "remove it or pass --skip-non-images")
    return files, skipped


def find_cells(folder: Path) -> list[Path]:
    """The cell folders under `folder`: itself when it holds images (directly or in claseK folders),
    else each sub-folder that does."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    direct = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if direct or (subdirs and all(re.match(r"^clase\d+$", p.name, re.I) for p in subdirs)):
        return [folder]
    cells = [d for d in subdirs if any(q.suffix.lower() in IMAGE_SUFFIXES for q in d.rglob("*"))]
    if not cells:
        raise InputError(f"{folder}: empty folder (no chromosome images found)")
    return cells


def read_gray(path: Path) -> np.ndarray:
    """The data layer's reader, with classify's error type and a minimum size."""
    try:
        a = manifest.read_gray(path)
    except DataError as e:
        raise InputError(str(e)) from e
    if min(a.shape) < 2:
        raise InputError(f"{path}: empty image")
    return a


class Classifier:
    """A trained run, loaded once: model, LFVs, preprocessing."""

    def __init__(self, run: Path):
        run = Path(run)
        if not run.is_dir():
            raise CheckpointError(f"{run}: run directory not found; train one with `chromo train` or the main job")
        self.cfg, self.dataset, self.model_name = load_run(run)
        self.model, ck = load_model(run)
        self.prep = ck.get("preprocessing")
        if not self.prep or "scale" not in self.prep:
            raise CheckpointError(f"{run / 'best.pt'}: incompatible checkpoint (no preprocessing record)")
        try:
            val = load_features(run, "val", NATIVE_QUERY[self.dataset])
        except FileNotFoundError as e:
            raise CheckpointError(f"{run}: incomplete run ({e})") from e
        if val["features"].shape[1] != self.model.feature_dim:
            raise CheckpointError(f"{run}: validation features do not match the model; rerun `chromo features`")
        self.lfv = label_feature_vectors(val["features"], val["labels"], self.cfg.gamma)
        self.run = run

    def objects(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Canvas images at the run's scale and the bright-on-dark crops (for the karyogram)."""
        crops = []
        for a in images:  # the data layer's normalisation (polarity guessed from the border, orientation as trained)
            border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
            crops.append(normalise(a, orient=self.prep.get("orient", False), dark_on_light=np.median(border) > 127)[0])
        canv = np.stack([place(c, self.prep["canvas"], self.prep["scale"])[0] for c in crops])
        return canv, crops

    def classify(self, files: list[Path]) -> tuple[pd.DataFrame, dict, list[np.ndarray]]:
        files = sorted(Path(f) for f in files)  # one canonical order: the result cannot depend on listing order
        if not files:
            raise InputError("empty folder: no chromosome images")
        if not MIN_OBJECTS <= len(files) <= MAX_OBJECTS:
            raise InputError(f"{Path(files[0]).parent}: {len(files)} images; a cell needs "
                             f"{MIN_OBJECTS}..{MAX_OBJECTS} single-chromosome images")
        canv, crops = self.objects([read_gray(f) for f in files])
        logits, feats = predict(self.model, canv, self.cfg)
        p = softmax(logits)
        top = np.argsort(-p, 1)[:, :3]
        d = lfv_distances(feats, *self.lfv, metric=self.cfg.distance)
        lfv_label, dmin = predict_lfv(d)
        lrd = label_redistribution(d, self.cfg.beta)["second"]
        a = assign_karyotype(-np.log(np.clip(p, 1e-12, 1)), self.cfg.extra_penalty, self.cfg.missing_penalty)
        pred = a["labels"]
        low = p.max(1) < self.cfg.low_confidence
        truth = [_true_label(Path(f)) for f in files]
        df = pd.DataFrame({
            "file": [str(f) for f in files], "predicted": [class_name(k) for k in pred],
            **{f"top{j + 1}": [class_name(k + 1) for k in top[:, j]] for j in range(3)},
            **{f"p{j + 1}": np.round(p[np.arange(len(p)), top[:, j]], 4) for j in range(3)},
            "lfv_label": [class_name(k) for k in lfv_label], "lfv_distance": np.round(dmin, 5),
            "lrd_label": [class_name(k) for k in lrd], "changed_by_lrd": lrd != lfv_label,
            "changed_by_assignment": pred != top[:, 0] + 1, "low_confidence": low,
            "true": [class_name(t) if t else "" for t in truth]})
        n = karyotype.counts(pred)
        flags = []
        if len(files) != 46:
            flags.append(f"abnormal count: {len(files)} chromosomes")
        if not karyotype.is_normal(a["formula"]):
            flags.append(f"abnormal karyotype: {a['formula']}")
        if low.any():
            flags.append(f"{int(low.sum())} low-confidence chromosome(s)")
        sex_p = p[:, 22:24].sum(1)
        if n[23] == 0 or any(low[pred >= 23]) or (sex_p.sum() < 1.5):
            flags.append("sex undetermined")
        report = {"formula": a["formula"], "hypothesis": a["hypothesis"], "chromosomes": len(files),
                  "counts": {class_name(k): v for k, v in n.items()}, "flags": flags,
                  "low_confidence_files": [str(f) for f, l in zip(files, low) if l],
                  "run": str(self.run), "model": self.model_name, "trained_on": self.dataset}
        if all(truth):
            report["true_formula"] = karyotype.formula(truth)
            report["accuracy"] = float(np.mean(np.array(truth) == pred))
        return df, report, crops

    def write(self, files: list[Path], out: Path, force: bool = False, skipped: list[str] = ()) -> dict:
        """Classify and write OUT/assignments.csv, karyotype.json, karyogram.png atomically."""
        from chromo import plots

        out = Path(out)
        if out.exists() and any(out.iterdir()) and not force:
            raise InputError(f"{out}: exists and is not empty; choose another --out or pass --force")
        df, report, crops = self.classify(files)
        if skipped:
            report["skipped_non_images"] = list(skipped)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
        try:
            df.to_csv(tmp / "assignments.csv", index=False)
            (tmp / "karyotype.json").write_text(json.dumps(report, indent=2) + "\n")
            labels = [{"X": 23, "Y": 24}.get(k) or int(k) for k in df["predicted"]]
            fig = plots.karyogram(crops, labels, df["low_confidence"].to_numpy(),
                                  title=f"{report['formula']}  ({cell_name(files)})")
            fig.savefig(tmp / "karyogram.png", dpi=110)
            import matplotlib.pyplot as plt

            plt.close(fig)
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return report


def classify_folder(folder: Path, run: Path, out: Path, force: bool = False, skip_non_images: bool = False,
                    progress: bool = True) -> list[dict]:
    """Classify every cell under `folder`; one cell writes to OUT, several to OUT/<cell>/."""
    from tqdm import tqdm

    cells = find_cells(Path(folder))
    clf = Classifier(run)
    jobs = []
    for c in cells:  # check every cell's files before writing anything
        files, skipped = cell_files(c, skip_non_images)
        if not files:
            raise InputError(f"{c}: empty folder (no chromosome images)")
        jobs.append((c, files, skipped))
    reports = []
    for c, files, skipped in tqdm(jobs, desc="cells", disable=True if (not progress or len(jobs) == 1) else None):
        target = Path(out) if len(jobs) == 1 else Path(out) / c.name
        reports.append({"cell": c.name, **clf.write(files, target, force, skipped)})
    return reports
