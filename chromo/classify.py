"""`chromo classify`: karyotype one cell (or a folder of cells) from single-chromosome images.

Input: a cell folder in either public layout (pki3 claseK/ sub-folders, bioimlab '<cell> <K>[a|b].bmp')
or a plain folder of image files; or a folder whose sub-folders are such cells. Output per cell:
assignments.csv, karyotype.json, karyogram.png. Every cell is read, checked and classified before anything
is written; then all cells are written into one temporary folder beside OUT and renamed into place at once.
OUT must not exist, be empty or (with --force) hold only a previous result: --force removes nothing but
the files this command writes.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chromo import CELL_SIZE, CLASSES, X, Y, class_name, device, karyotype
from chromo.cell import predict_cell
from chromo.data import manifest
from chromo.data.canvas import DARK_ON_LIGHT, MARGIN, canvas_hw, normalise, object_areas, place
from chromo.data.loader import NATIVE_QUERY
from chromo.data.manifest import DataError
from chromo.evaluate import size_costs
from chromo.inference import predict
from chromo.matching import label_feature_vectors
from chromo.run import CheckpointError, Run

IMAGE_SUFFIXES = {".tif", ".tiff", ".bmp", ".png", ".jpg", ".jpeg"}
MIN_OBJECTS, MAX_OBJECTS = 30, 60
IGNORED = {"SHA256SUMS", ".DS_Store", "Thumbs.db"}
OUTPUT_FILES = ("assignments.csv", "karyotype.json", "karyogram.png")
MIN_SIDE = 5          # px, short side; the smallest public image is a 6x9 px fragment (pki3 98000042.21)
SHRINK_FLAG = 1.25    # flag objects this much larger than the run's canvas holds at its scale


class InputError(ValueError):
    """Bad input for classify; the message names the folder or file."""


def _true_label(path: Path) -> int | None:
    """The class a public layout gives a file (pki3 claseK folder, bioimlab '<cell> <K>[ab].bmp'), if any."""
    m = manifest.PKI3_CLASS_DIR.match(path.parent.name)
    k = int(m.group(1)) if m else (int(b.group(2)) if (b := manifest.BIOIMLAB_FILE.match(path.name)) else None)
    return k if k in CLASSES else None


def cell_dir(files) -> Path:
    """The cell folder of a cell's files (above pki3's claseK folders)."""
    parent = Path(sorted(files)[0]).parent
    return parent.parent if manifest.PKI3_CLASS_DIR.match(parent.name) else parent


def cell_name(files) -> str:
    return cell_dir(files).name


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
    if direct or (subdirs and all(manifest.PKI3_CLASS_DIR.match(p.name) for p in subdirs)):
        return [folder]
    cells = [d for d in subdirs if any(q.suffix.lower() in IMAGE_SUFFIXES for q in d.rglob("*"))]
    if not cells:
        raise InputError(f"{folder}: empty folder (no chromosome images found)")
    return cells


def read_gray(path: Path, notes: list | None = None) -> np.ndarray:
    """The data layer's reader (16-bit and float images rescaled, noted in `notes`), with classify's
    error type and a minimum size."""
    try:
        a = manifest.read_gray(path, notes)
    except DataError as e:
        raise InputError(str(e)) from e
    if min(a.shape) < MIN_SIDE:
        raise InputError(f"{path}: image too small ({a.shape[1]}x{a.shape[0]} px; a chromosome image needs at "
                         f"least {MIN_SIDE} px on each side); remove it")
    return a


def _some(paths, n: int = 5) -> str:
    paths = [str(p) for p in paths]
    return ", ".join(paths[:n]) + (f" and {len(paths) - n} more" if len(paths) > n else "")


def read_cell(files: list[Path]) -> tuple[list[np.ndarray], list[dict]]:
    """Every image of one cell, checked: readable, not tiny, not blank, no two identical.
    Returns (images, conversions of wide images)."""
    converted = []
    images = [read_gray(f, converted) for f in files]
    blank = [f for f, a in zip(files, images) if a.min() == a.max()]
    if blank:
        raise InputError(f"{_some(blank)}: blank image(s) (a single grey value, no chromosome); remove them")
    seen = {}
    for f, a in zip(files, images):
        key = hashlib.sha256(f"{a.shape}".encode() + a.tobytes()).digest()
        if key in seen:
            raise InputError(f"{seen[key]} and {f}: identical images (the same pixels); remove the copy")
        seen[key] = f
    return images, converted


@dataclass
class CellResult:
    """One classified cell, in memory until written."""
    cell: str
    folder: str           # sub-folder of OUT ("" for OUT itself)
    files: list
    table: pd.DataFrame
    report: dict
    crops: list


class Classifier:
    """A trained run, loaded once: its model (net), LFVs, preprocessing."""

    def __init__(self, run):
        run = Run(run)
        if not run.path.is_dir():
            raise CheckpointError(f"{run}: run directory not found; train one with `chromo train` or the main job")
        self.cfg, self.dataset, self.model = run.settings()
        self.net, ck = run.load_model(device())   # refuses a best.pt of another run (Run.check_identity)
        self.prep = ck.get("preprocessing")
        if not self.prep or "scale" not in self.prep:
            raise CheckpointError(f"{run.best}: incompatible checkpoint (no preprocessing record)")
        try:
            val = run.features("val", NATIVE_QUERY[self.dataset])
        except FileNotFoundError as e:
            raise CheckpointError(f"{run}: incomplete run ({e})") from e
        if val["features"].shape[1] != self.net.feature_dim:
            raise CheckpointError(f"{run}: validation features do not match the model; rerun `chromo features`")
        self.lfv = label_feature_vectors(val["features"], val["labels"], self.cfg.gamma)   # eq. 4
        self.size_prior = run.size_prior()     # the assignment's relative-size prior, as in the evaluation
        self.dark_on_light = bool(self.prep.get("dark_on_light", DARK_ON_LIGHT.get(self.dataset, False)))
        self.run = run

    def objects(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
        """Canvas images at the run's scale, the bright-on-dark crops (for the karyogram), and the indices of
        images whose background disagrees with the run's polarity (dark chromosomes on a light background for
        pki3, bright on dark for BioImLab): those are normalised as the run's images were, and flagged.
        place() shrinks an object larger than the canvas holds at that scale to fit."""
        crops, inverted = [], []
        for i, a in enumerate(images):
            border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
            if (np.median(border) > 127) != self.dark_on_light:
                inverted.append(i)
            crops.append(normalise(a, orient=self.prep.get("orient", False), dark_on_light=self.dark_on_light,
                                   straighten=self.prep.get("straighten", False))[0])
        canvas_images = np.stack([place(c, self.prep["canvas"], self.prep["scale"])[0] for c in crops])
        return canvas_images, crops, inverted

    def max_side(self) -> int:
        """Objects longer than this (px) are flagged: far larger than the run's canvas holds at its scale."""
        return round(SHRINK_FLAG * (max(canvas_hw(self.prep["canvas"])) - 2 * MARGIN) / self.prep["scale"])

    def classify(self, files: list[Path]) -> tuple[pd.DataFrame, dict, list[np.ndarray]]:
        files = sorted(Path(f) for f in files)  # one canonical order: the result cannot depend on listing order
        if not files:
            raise InputError("empty folder: no chromosome images")
        if not MIN_OBJECTS <= len(files) <= MAX_OBJECTS:
            raise InputError(f"{Path(files[0]).parent}: {len(files)} images; a cell needs "
                             f"{MIN_OBJECTS}..{MAX_OBJECTS} single-chromosome images")
        images, converted = read_cell(files)
        canvas_images, crops, inverted = self.objects(images)
        logits, features = predict(self.net, canvas_images, self.cfg)
        metric = self.cfg.distance
        areas = np.where([max(cr.shape) > self.max_side() for cr in crops], 0.0, object_areas(canvas_images))
        size = size_costs({"areas": areas, "cells": np.zeros(len(files), int)},   # shrunk: size not comparable
                          self.size_prior, str(self.run.path))
        c = predict_cell(logits, features, {metric: self.lfv}, self.cfg.beta, self.cfg.extra_penalty,
                         self.cfg.missing_penalty, size)             # the evaluation's path (chromo.cell)
        probs = c.probs
        top = np.argsort(-probs, 1)[:, :3]
        pred = c.assign
        low = probs.max(1) < self.cfg.low_confidence
        truth = [_true_label(Path(f)) for f in files]
        df = pd.DataFrame({
            "file": [str(f) for f in files], "predicted": [class_name(k) for k in pred],
            **{f"top{j + 1}": [class_name(k + 1) for k in top[:, j]] for j in range(3)},
            **{f"p{j + 1}": np.round(probs[np.arange(len(probs)), top[:, j]], 4) for j in range(3)},
            "lfv_label": [class_name(k) for k in c.lfv[metric]], "lfv_distance": np.round(c.min_distance[metric], 5),
            "lrd_label": [class_name(k) for k in c.lrd[metric]], "changed_by_lrd": c.lrd[metric] != c.lfv[metric],
            "changed_by_assignment": pred != c.dcnn, "low_confidence": low,
            "true": [class_name(t) if t else "" for t in truth],
            "converted_from": [{cv["file"]: cv["from"] for cv in converted}.get(str(f), "") for f in files]})
        report = {"formula": c.formula, "hypothesis": c.hypothesis, "chromosomes": len(files),
                  "counts": {class_name(k): v for k, v in karyotype.counts(pred).items()},
                  "flags": self.flags(files, c, low, crops, converted, inverted),
                  "low_confidence_files": [str(f) for f, lo in zip(files, low) if lo],
                  "run": str(self.run), "model": self.model, "trained_on": self.dataset}
        shrunk = [str(f) for f, cr in zip(files, crops) if max(cr.shape) > self.max_side()]
        report.update({k: v for k, v in (("converted", converted), ("shrunk_files", shrunk),
                                         ("inverted_files", [str(files[i]) for i in inverted])) if v})
        if all(truth):
            report["true_formula"] = karyotype.formula(truth)
            report["accuracy"] = float(np.mean(np.array(truth) == pred))
        return df, report, crops

    def flags(self, files, c, low, crops, converted, inverted) -> list[str]:
        """What a reader of karyotype.json should check by eye."""
        flags = []
        if len(files) != CELL_SIZE:
            flags.append(f"abnormal count: {len(files)} chromosomes")
        if not karyotype.is_normal(c.formula):
            flags.append(f"abnormal karyotype: {c.formula}")
        if low.any():
            flags.append(f"{int(low.sum())} low-confidence chromosome(s)")
        shrunk = sum(max(cr.shape) > self.max_side() for cr in crops)
        if shrunk:
            flags.append(f"{shrunk} image(s) larger than {self.max_side()} px were shrunk to fit the run's "
                         "canvas; their size is not comparable with the others")
        if converted:
            flags.append(f"{len(converted)} image(s) wider than 8 bits rescaled from their min..max to 0..255")
        if inverted:
            look = "dark chromosomes on a light" if self.dark_on_light else "bright chromosomes on a dark"
            flags.append(f"{len(inverted)} image(s) do not look like the run's images ({look} background); "
                         "classified as if they were")
        sex_p = c.probs[:, X - 1:Y].sum(1)                           # p(X) + p(Y) per chromosome
        if karyotype.counts(c.assign)[X] == 0 or any(low[c.assign >= X]) or (sex_p.sum() < 1.5):
            flags.append("sex undetermined")
        return flags

    def result(self, files: list[Path], skipped=(), folder: str = "") -> CellResult:
        """Classify one cell in memory (written later by save)."""
        df, report, crops = self.classify(files)
        if skipped:
            report["skipped_non_images"] = list(skipped)
        return CellResult(cell_name(files), folder, sorted(Path(f) for f in files), df, report, crops)

    def write(self, files: list[Path], out: Path, force: bool = False, skipped: list[str] = ()) -> dict:
        """Classify one cell and write OUT/assignments.csv, karyotype.json, karyogram.png atomically."""
        out = Path(out)
        check_out(out, force, [("input folder", d) for d in sorted({cell_dir([f]) for f in files})] +
                  [("run directory", self.run.path)])
        r = self.result(files, skipped)
        save([r], out, force)
        return r.report


# --- output: checked before, written all at once, never removing what this command did not write ----------
def _overlap(out: Path, other: Path) -> str | None:
    a, b = out.resolve(), Path(other).resolve()
    return "is" if a == b else "lies inside" if b in a.parents else "contains" if a in b.parents else None


def foreign_files(out: Path) -> list[Path]:
    """What in OUT this command did not write: anything but its files, directly or in cell folders."""
    bad = []
    for p in sorted(out.iterdir()):
        if p.is_dir() and not p.is_symlink():
            bad += [q for q in sorted(p.iterdir()) if q.name not in OUTPUT_FILES or q.is_symlink() or not q.is_file()]
        elif p.name not in OUTPUT_FILES or p.is_symlink() or not p.is_file():
            bad.append(p)
    return bad


def check_out(out: Path, force: bool, keep: list[tuple[str, Path]]) -> None:
    """Refuse an OUT that is a file, is/contains/lies inside a folder in `keep` (input, run), or holds
    anything but a previous result (without force: anything at all)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file, not a folder; choose another --out")
    for what, path in keep:
        if rel := _overlap(out, path):
            raise InputError(f"{out}: {rel} the {what} {path}; choose an --out outside it")
    if not out.is_dir() or not any(out.iterdir()):
        return
    foreign = foreign_files(out)
    if foreign and force:
        raise InputError(f"{_some(foreign, 3)}: not written by chromo classify; --force replaces only "
                         f"{', '.join(OUTPUT_FILES)} (and cell folders of them) and will not remove it; "
                         "move it away or choose another --out")
    if not force:
        raise InputError(f"{out}: exists and is not empty; choose another --out"
                         + ("" if foreign else " or pass --force to replace the previous result"))


def _new_dir(parent: Path, prefix: str) -> Path:
    """A new uniquely named folder with the usual permissions (umask applies; mkdtemp's would be 0700)."""
    while True:
        p = parent / f"{prefix}{secrets.token_hex(4)}"
        with suppress(FileExistsError):
            p.mkdir()
            return p


def _render(folder: Path, r: CellResult) -> None:
    """assignments.csv, karyotype.json and karyogram.png of one cell."""
    import matplotlib.pyplot as plt

    from chromo import plots

    r.table.to_csv(folder / "assignments.csv", index=False)
    (folder / "karyotype.json").write_text(json.dumps(r.report, indent=2) + "\n")
    labels = [{"X": 23, "Y": 24}.get(k) or int(k) for k in r.table["predicted"]]
    fig = plots.karyogram(r.crops, labels, r.table["low_confidence"].to_numpy(),
                          title=f"{r.report['formula']}  ({r.cell})")
    try:
        fig.savefig(folder / "karyogram.png", dpi=110)
    finally:
        plt.close(fig)


def _move_aside(out: Path) -> Path | None:
    """Move a previous result (non-empty OUT) to a hidden folder beside it; None when there is none."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    old = _new_dir(out.parent, f".{out.name}.old.")
    try:
        os.rename(out, old)             # onto the new, empty folder
    except OSError as e:
        old.rmdir()
        if isinstance(e, FileNotFoundError):    # gone meanwhile: nothing to replace
            return None
        raise
    return old


def _remove_own(old: Path) -> None:
    """Remove a previous result moved aside: this command's files by name, then the emptied folders.
    Anything else (put there while it was replaced) stays, and is reported."""
    for d in [*(p for p in old.iterdir() if p.is_dir() and not p.is_symlink()), old]:
        for name in OUTPUT_FILES:
            if (d / name).is_file() and not (d / name).is_symlink():
                with suppress(OSError):
                    (d / name).unlink()
        with suppress(OSError):
            d.rmdir()
    if old.exists():
        print(f"chromo: note: {old} keeps files that were added to the old output while it was replaced",
              file=sys.stderr)


def _publish(tmp: Path, out: Path, force: bool) -> None:
    """Rename the finished folder to OUT. rename(2) onto a non-empty folder fails, so the check that OUT is
    free and the write are one step: of two runs racing for OUT, one fails. With force, a previous result
    is moved aside first and, once the new one is in place, removed."""
    old = _move_aside(out) if force else None
    try:
        os.rename(tmp, out)
    except OSError as e:
        if old is not None:
            with suppress(OSError):
                os.rename(old, out)
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise InputError(f"{out}: another run wrote it meanwhile; nothing was written. Choose another --out"
                             " or pass --force") from e
        raise
    if old is not None:
        _remove_own(old)


def save(results: list[CellResult], out: Path, force: bool = False) -> None:
    """Write every cell into one temporary folder beside OUT (each cell in its sub-folder, if any), then
    rename it into place: all or nothing. An OSError (read-only folder, disk full) is an InputError naming
    OUT; the temporary folder and any parent folders made for OUT are removed."""
    out = Path(out)
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]     # deepest first
    tmp = None
    try:
        for p in reversed(made):
            p.mkdir(exist_ok=True)
        tmp = _new_dir(out.parent, f".{out.name}.")
        for r in results:
            (tmp / r.folder).mkdir(exist_ok=True)
            _render(tmp / r.folder, r)
        _publish(tmp, out, force)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in made:
            with suppress(OSError):
                p.rmdir()
        if isinstance(e, OSError):
            raise InputError(f"{out}: cannot write ({e.strerror or e}); check that its folder is writable and "
                             "has free space. Nothing was written") from e
        raise


def classify_folder(folder: Path, run: Path, out: Path, force: bool = False, skip_non_images: bool = False,
                    progress: bool = True) -> list[dict]:
    """Classify every cell under `folder`; one cell writes to OUT, several to OUT/<cell>/. Every cell is
    listed, read, checked and classified before anything is written."""
    from tqdm import tqdm

    folder, out = Path(folder), Path(out)
    cells = find_cells(folder)
    check_out(out, force, [("input folder", folder), ("run directory", Path(run))])
    clf = Classifier(run)
    jobs = []
    for c in cells:  # every cell's listing before any image is read
        files, skipped = cell_files(c, skip_non_images)
        if not files:
            raise InputError(f"{c}: empty folder (no chromosome images)")
        jobs.append((c, files, skipped))
    quiet = True if (not progress or len(jobs) == 1) else None
    results = [clf.result(files, skipped, "" if len(jobs) == 1 else c.name)   # all in memory first
               for c, files, skipped in tqdm(jobs, desc="cells", disable=quiet)]
    save(results, out, force)
    return [{"cell": c.name, **r.report} for (c, _, _), r in zip(jobs, results)]


# --- an example cell for the book ----------------------------------------------------------------------
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
    others = test[test["cell"] != base].sort_values("slide", key=lambda s: s == base_slide)   # other slides first
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
        rows.append({"cell": cell, "chromosomes": rep["chromosomes"], "true_formula": rep.get("true_formula", ""),
                     "formula": rep["formula"], "accuracy": rep.get("accuracy", np.nan),
                     "flags": "; ".join(rep["flags"]), "seconds": time.perf_counter() - t})
    return pd.DataFrame(rows)
