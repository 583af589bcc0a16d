"""`chromo classify`: karyotype one cell (or a folder of cells) from single-chromosome images.

Input: a cell folder in either public layout (pki3 claseK/ sub-folders, bioimlab '<cell> <K>[a|b].bmp')
or a plain folder of image files; or a folder whose sub-folders are such cells. Output per cell:
assignments.csv, review.csv (every chromosome, least sure first), karyotype.json, karyogram.png. Every cell is
read, checked and classified before anything is written; then all cells are written into one temporary folder
beside OUT and renamed into place at once. OUT must not exist, be empty or (with --force) hold only a previous
result: --force removes nothing but the files this command writes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chromo import CELL_SIZE, CLASSES, X, Y, class_name, device, karyotype, publish
from chromo.cell import predict_cell, size_costs
from chromo.data import manifest
from chromo.config import canvas_hw
from chromo.data.canvas import DARK_ON_LIGHT, MARGIN, normalise, object_areas, place
from chromo.data.loader import NATIVE_QUERY
from chromo.data.manifest import DataError
from chromo.inference import predict
from chromo.matching import label_feature_vectors
from chromo.review import calibrate, calibration_for, expected_errors, review_queue
from chromo.run import CheckpointError, Run

IMAGE_SUFFIXES = {".tif", ".tiff", ".bmp", ".png", ".jpg", ".jpeg"}
MIN_OBJECTS, MAX_OBJECTS = 30, 60
IGNORED = {"SHA256SUMS", ".DS_Store", "Thumbs.db"}
OUTPUT_FILES = ("assignments.csv", "review.csv", "karyotype.json", "karyogram.png")
MIN_SIDE = 5          # px, short side; the smallest public image is a 6x9 px fragment (pki3 98000042.21)
SHRINK_FLAG = 1.25    # flag objects this much larger than the run's canvas holds at its scale


class InputError(ValueError):
    """Bad input for classify; the message names the folder or file."""


def _true_label(path: Path) -> int | None:
    """The class a public layout gives a file (pki3 claseK folder, bioimlab '<cell> <K>[ab].bmp'), if any."""
    m = manifest.PKI3_CLASS_DIR.match(path.parent.name)
    k = int(m.group(1)) if m else (int(b.group(2)) if (b := manifest.BIOIMLAB_FILE.match(path.name))
                                   else None)
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
        raise InputError(f"{path}: image too small ({a.shape[1]}x{a.shape[0]} px; a chromosome image needs "
                         f"at least {MIN_SIDE} px on each side); remove it")
    return a


def read_cell(files: list[Path]) -> tuple[list[np.ndarray], list[dict]]:
    """Every image of one cell, checked: readable, not tiny, not blank, no two identical.
    Returns (images, conversions of wide images)."""
    converted = []
    images = [read_gray(f, converted) for f in files]
    blank = [f for f, a in zip(files, images) if a.min() == a.max()]
    if blank:
        raise InputError(f"{publish.some(blank)}: blank image(s) (a single grey value, no chromosome); "
                         "remove them")
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
            raise CheckpointError(f"{run}: run directory not found; train one with `chromo train` or the "
                                  "main job")
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
            raise CheckpointError(f"{run}: validation features do not match the model; rerun `chromo "
                                  "features`")
        self.lfv = label_feature_vectors(val["features"], val["labels"], self.cfg.matching.gamma)   # eq. 4
        self.size_prior = run.size_prior()     # the assignment's relative-size prior, as in the evaluation
        # the margins' calibration on the validation cells (chromo.review)
        m = self.cfg.matching
        self.calibration = calibration_for(val, self.size_prior, m.extra_penalty, m.missing_penalty)
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
        # one canonical order: the result cannot depend on listing order
        files = sorted(Path(f) for f in files)
        if not files:
            raise InputError("empty folder: no chromosome images")
        if not MIN_OBJECTS <= len(files) <= MAX_OBJECTS:
            raise InputError(f"{Path(files[0]).parent}: {len(files)} images; a cell needs "
                             f"{MIN_OBJECTS}..{MAX_OBJECTS} single-chromosome images")
        images, converted = read_cell(files)
        canvas_images, crops, inverted = self.objects(images)
        logits, features = predict(self.net, canvas_images, self.cfg)
        metric = self.cfg.matching.distance
        areas = np.where([max(cr.shape) > self.max_side() for cr in crops], 0.0, object_areas(canvas_images))
        size = size_costs({"areas": areas, "cells": np.zeros(len(files),
                                                             int)},   # shrunk: size not comparable
                          self.size_prior, str(self.run.path))
        m = self.cfg.matching                          # the evaluation's path (chromo.cell), with the margins
        c = predict_cell(logits, features, {metric: self.lfv}, m.beta, m.extra_penalty, m.missing_penalty,
                         size, margins=True)
        confidence = calibrate(c.margin, self.calibration)
        order = np.empty(len(files), int)
        order[review_queue(c.margin)] = np.arange(1, len(files) + 1)    # 1: the least sure (by margin)
        truth = [_true_label(Path(f)) for f in files]
        df = self.table(files, c, confidence, order, truth, converted)
        cell = self.cell_confidence(confidence)
        report = {"formula": c.formula, "hypothesis": c.hypothesis, "chromosomes": len(files),
                  "counts": {class_name(k): v for k, v in karyotype.counts(c.assign).items()},
                  "confidence": cell,
                  "flags": self.flags(files, c, confidence, cell, df["to_check"].to_numpy(), crops,
                                      converted, inverted),
                  "to_check": df.sort_values("check_order")["file"][df["to_check"]].tolist(),
                  "run": str(self.run), "model": self.model, "trained_on": self.dataset}
        shrunk = [str(f) for f, cr in zip(files, crops) if max(cr.shape) > self.max_side()]
        report.update({k: v for k, v in (("converted", converted), ("shrunk_files", shrunk),
                                         ("inverted_files", [str(files[i]) for i in inverted])) if v})
        if all(truth):
            report["true_formula"] = karyotype.formula(truth)
            report["accuracy"] = float(np.mean(np.array(truth) == c.assign))
        return df, report, crops

    def table(self, files, c, confidence, order, truth, converted) -> pd.DataFrame:
        """assignments.csv: one row per image, in file order; check_order 1 is the first to check."""
        probs, metric = c.probs, self.cfg.matching.distance
        top = np.argsort(-probs, 1)[:, :3]
        return pd.DataFrame({
            "file": [str(f) for f in files], "predicted": [class_name(k) for k in c.assign],
            "confidence": np.round(confidence, 4), "runner_up": [class_name(k) for k in c.runner_up],
            "margin": np.round(c.margin, 4), "check_order": order,
            "to_check": order <= self.cfg.matching.review_k,
            **{f"top{j + 1}": [class_name(k + 1) for k in top[:, j]] for j in range(3)},
            **{f"p{j + 1}": np.round(probs[np.arange(len(probs)), top[:, j]], 4) for j in range(3)},
            "lfv_label": [class_name(k) for k in c.lfv[metric]],
            "lfv_distance": np.round(c.min_distance[metric], 5),
            "lrd_label": [class_name(k) for k in c.lrd[metric]],
            "changed_by_lrd": c.lrd[metric] != c.lfv[metric],
            "changed_by_assignment": c.assign != c.dcnn, "true": [class_name(t) if t else "" for t in truth],
            "converted_from": [{cv["file"]: cv["from"] for cv in converted}.get(str(f), "") for f in files]})

    def cell_confidence(self, confidence) -> dict:
        """The cell's expected number of wrong labels (review.expected_errors), the probability that every
        label is right (the product of p, as if independent), and whether to set the cell aside."""
        expected = expected_errors(confidence)
        return {"expected_errors": round(expected, 3), "all_right": round(float(np.prod(confidence)), 4),
                "set_aside": expected >= self.cfg.matching.set_aside}

    def flags(self, files, c, confidence, cell, checked, crops, converted, inverted) -> list[str]:
        """What a reader of karyotype.json should check by eye (`cell`: cell_confidence's result)."""
        flags = []
        if len(files) != CELL_SIZE:
            flags.append(f"abnormal count: {len(files)} chromosomes")
        if not karyotype.is_normal(c.formula):
            flags.append(f"abnormal karyotype: {c.formula}")
        if cell["set_aside"]:
            flags.append(f"set this cell aside: about {cell['expected_errors']:.1f} wrong labels expected")
        if checked.any():
            flags.append(f"check {int(checked.sum())} chromosome(s) first (review.csv, outlined on the "
                         "karyogram)")
        shrunk = sum(max(cr.shape) > self.max_side() for cr in crops)
        if shrunk:
            flags.append(f"{shrunk} image(s) larger than {self.max_side()} px were shrunk to fit the run's "
                         "canvas; their size is not comparable with the others")
        if converted:
            flags.append(f"{len(converted)} image(s) wider than 8 bits rescaled from min..max to 0..255")
        if inverted:
            look = "dark chromosomes on a light" if self.dark_on_light else "bright chromosomes on a dark"
            flags.append(f"{len(inverted)} image(s) do not look like the run's images ({look} background); "
                         "classified as if they were")
        sex_p = c.probs[:, X - 1:Y].sum(1)                           # p(X) + p(Y) per chromosome
        if karyotype.counts(c.assign)[X] == 0 or any(confidence[c.assign >= X] < 0.5) or (sex_p.sum() < 1.5):
            flags.append("sex undetermined")
        return flags

    def result(self, files: list[Path], skipped=(), folder: str = "") -> CellResult:
        """Classify one cell in memory (written later by save)."""
        df, report, crops = self.classify(files)
        if skipped:
            report["skipped_non_images"] = list(skipped)
        return CellResult(cell_name(files), folder, sorted(Path(f) for f in files), df, report, crops)

    def write(self, files: list[Path], out: Path, force: bool = False, skipped: list[str] = ()) -> dict:
        """Classify one cell and write its OUTPUT_FILES into OUT atomically."""
        out = Path(out)
        publish.check_out(out, force, [("input folder", d) for d in sorted({cell_dir([f]) for f in files})]
                          + [("run directory", self.run.path)], OUTPUT_FILES)
        r = self.result(files, skipped)
        save([r], out, force)
        return r.report


def save(results: list[CellResult], out: Path, force: bool = False) -> None:
    """Every cell's files (each cell in its sub-folder, if any) written all at once (chromo.publish)."""
    def write(tmp: Path) -> None:
        for r in results:
            (tmp / r.folder).mkdir(exist_ok=True)
            _render(tmp / r.folder, r)
    publish.write_all(out, write, OUTPUT_FILES, force)


def _render(folder: Path, r: CellResult) -> None:
    """The OUTPUT_FILES of one cell."""
    import matplotlib.pyplot as plt

    from chromo.karyogram import karyogram

    r.table.to_csv(folder / "assignments.csv", index=False)
    queue = r.table.sort_values("check_order")                              # the order a person should check
    queue.rename(columns={"predicted": "label"})[["file", "label", "confidence", "runner_up",
                                                  "margin"]].to_csv(
        folder / "review.csv", index=False)
    (folder / "karyotype.json").write_text(json.dumps(r.report, indent=2) + "\n")
    labels = [{"X": 23, "Y": 24}.get(k) or int(k) for k in r.table["predicted"]]
    fig = karyogram(r.crops, labels, r.table["to_check"].to_numpy(),
                          title=f"{r.report['formula']}  ({r.cell})")
    try:
        fig.savefig(folder / "karyogram.png", dpi=110)
    finally:
        plt.close(fig)


def classify_folder(folder: Path, run: Path, out: Path, force: bool = False, skip_non_images: bool = False,
                    progress: bool = True) -> list[dict]:
    """Classify every cell under `folder`; one cell writes to OUT, several to OUT/<cell>/. Every cell is
    listed, read, checked and classified before anything is written."""
    from tqdm import tqdm

    folder, out = Path(folder), Path(out)
    cells = find_cells(folder)
    publish.check_out(out, force, [("input folder", folder), ("run directory", Path(run))], OUTPUT_FILES)
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
