"""Readers for the public data sets as published, and the manifest: one row per image.

pki3:     single_clase/<slide>.<cell>.tiff/claseK/claseK_<i>_<slide>.<cell>.tiff   (G-band, KI style)
bioimlab: single_chromosomes/<cell>/<cell> <K><a|b>.bmp                            (Q-band, MI style)
synthetic: generated from the CC0 ideogram band tables (chromo.data.synthetic), never real.

Quirks are handled and counted, never silently: RGB/RGBA files are converted to grayscale (counted in
``converted``), images in class folders outside 1..24 are excluded and listed (pki3's stray clase25),
unreadable files raise a DataError naming the file unless ``on_error='skip'`` (then listed).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from chromo import karyotype

PKI3_FILE = re.compile(r"^clase(\d+)_(\d+)_([^._]+)\.(\d+)\.tiff?$", re.I)
PKI3_CLASS_DIR = re.compile(r"^clase(\d+)$", re.I)
BIOIMLAB_FILE = re.compile(r"^(\d+) (\d+)([ab]?)\.bmp$", re.I)  # X/Y of XY cells carry no a/b
INCOMPLETE_BELOW = 44  # a cell with fewer chromosomes is flagged incomplete (pki3's 36-chromosome cell)
COLUMNS = ["dataset", "path", "cell", "slide", "label", "homologue", "width", "height", "mode",
           "cell_count", "cell_formula", "abnormal", "incomplete"]


class DataError(RuntimeError):
    """Bad input data; the message names the file or folder and the problem."""


@dataclass
class Report:
    """What a reader did besides reading: exclusions with reasons, conversions, skips."""
    excluded: list = field(default_factory=list)   # [{path, reason}]
    converted: int = 0                             # RGB/RGBA files read as grayscale
    skipped: list = field(default_factory=list)    # unreadable files skipped on request [{path, reason}]


def _rel(p: Path, root) -> str:
    try:
        return str(Path(p).relative_to(root))
    except ValueError:
        return str(p)


def _header(path: Path, on_error: str, report: Report):
    """(width, height, mode) from the file header, or None when skipped."""
    try:
        with Image.open(path) as im:
            return im.size[0], im.size[1], im.mode
    except (UnidentifiedImageError, OSError, ValueError) as e:
        if on_error == "skip":
            report.skipped.append({"path": str(path), "reason": f"unreadable image: {e}"})
            return None
        raise DataError(f"{path}: unreadable image ({e}). Pass on_error='skip' (--skip-unreadable) "
                        "to skip and list such files.") from e


class HeaderCache:
    """(width, height, mode) of image files remembered by path, size and modification time, so a manifest
    is rebuilt without opening every image again (pki3's 25,881 TIFF headers take ~15 s with the files in
    the OS cache, ~50 s without). A file whose size or time changed is read again; unreadable files are never
    remembered (they raise or are skipped each time); a damaged or older cache file is ignored and rewritten.
    `path` None: nothing is remembered."""
    VERSION = 1

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else None
        self.known, self.used, self.changed = {}, {}, False
        if self.path and self.path.is_file():
            try:
                d = json.loads(self.path.read_text())
                if d.get("version") == self.VERSION:
                    self.known = dict(d["headers"])
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self.known = {}

    def header(self, f: Path, on_error: str, report: Report):
        """(width, height, mode) of file `f`, from the cache or its header; None when skipped."""
        if self.path is None:
            return _header(f, on_error, report)
        st = f.stat()
        key = f"{f}|{st.st_size}|{st.st_mtime_ns}"
        h = self.known.get(key)
        if not (isinstance(h, list) and len(h) == 3):
            h = _header(f, on_error, report)
            if h is None:
                return None
            h, self.changed = list(h), True
        self.used[key] = h
        return tuple(h)

    def save(self) -> None:
        """Write the headers used by this build (entries of files gone or changed are dropped), atomically."""
        if self.path is not None and (self.changed or len(self.used) != len(self.known)):
            from chromo.io import atomic_write_json

            atomic_write_json(self.path, {"version": self.VERSION, "headers": self.used})


def read_pki3(root: Path, on_error: str = "raise", headers: HeaderCache | None = None) -> tuple[list[dict],
                                                                                                Report]:
    base = Path(root) / "pki3" / "single_clase"
    if not base.is_dir():
        raise DataError(f"{base}: pki3 folder not found (expected "
                        "pki3/single_clase/<slide>.<cell>.tiff/claseK/)")
    rows, rep, headers = [], Report(), headers or HeaderCache()
    for cell_dir in sorted(base.iterdir()):
        if not cell_dir.is_dir():
            rep.excluded.append({"path": _rel(cell_dir, root), "reason": "not a cell folder"})
            continue
        m = re.match(r"^([^.]+)\.(\d+)\.tiff?$", cell_dir.name)
        if not m:
            rep.excluded.append({"path": _rel(cell_dir, root),
                                 "reason": "cell folder name is not <slide>.<cell>.tiff"})
            continue
        slide, cell = m.group(1), f"{m.group(1)}.{m.group(2)}"
        n_before = len(rows)
        for class_dir in sorted(cell_dir.iterdir()):
            cm = PKI3_CLASS_DIR.match(class_dir.name)
            files = sorted(class_dir.iterdir()) if class_dir.is_dir() else [class_dir]
            if not cm:
                for f in files:
                    rep.excluded.append({"path": _rel(f, root),
                                         "reason": f"unrecognised class folder '{class_dir.name}'"})
                continue
            k = int(cm.group(1))
            for f in files:
                if not 1 <= k <= 24:
                    rep.excluded.append({"path": _rel(f, root),
                                         "reason": f"class folder clase{k} outside 1..24 "
                                         "(labelling error; the class is not guessed)"})
                    continue
                fm = PKI3_FILE.match(f.name)
                if not fm or int(fm.group(1)) != k:
                    rep.excluded.append({"path": _rel(f, root),
                                         "reason": "file name is not claseK_<i>_<slide>.<cell>.tiff"})
                    continue
                h = headers.header(f, on_error, rep)
                if h is None:
                    continue
                rows.append(dict(dataset="pki3", path=str(f.relative_to(root)), cell=cell, slide=slide,
                                 label=k,
                                 homologue=int(fm.group(2)), width=h[0], height=h[1], mode=h[2]))
        if len(rows) == n_before:
            rep.excluded.append({"path": _rel(cell_dir, root), "reason": "empty cell (no chromosome images)"})
    return rows, rep


def read_bioimlab(root: Path, on_error: str = "raise",
                  headers: HeaderCache | None = None) -> tuple[list[dict], Report]:
    base = Path(root) / "bioimlab" / "single_chromosomes"
    if not base.is_dir():
        raise DataError(f"{base}: bioimlab folder not found (expected bioimlab/single_chromosomes/<cell>/)")
    rows, rep, headers = [], Report(), headers or HeaderCache()
    for cell_dir in sorted(base.iterdir(), key=lambda p: (len(p.name), p.name)):
        if not cell_dir.is_dir():
            rep.excluded.append({"path": _rel(cell_dir, root), "reason": "not a cell folder"})
            continue
        n_before = len(rows)
        for f in sorted(cell_dir.iterdir()):
            m = BIOIMLAB_FILE.match(f.name)
            if not m or m.group(1) != cell_dir.name:
                rep.excluded.append({"path": _rel(f, root),
                                     "reason": "file name is not '<cell> <K>[a|b].bmp'"})
                continue
            k = int(m.group(2))
            if not 1 <= k <= 24:
                rep.excluded.append({"path": _rel(f, root), "reason": f"class {k} outside 1..24"})
                continue
            h = headers.header(f, on_error, rep)
            if h is None:
                continue
            rows.append(dict(dataset="bioimlab", path=str(f.relative_to(root)), cell=cell_dir.name,
                             slide=cell_dir.name,
                             label=k, homologue="ab".index(m.group(3).lower() or "a"), width=h[0],
                             height=h[1], mode=h[2]))
        if len(rows) == n_before:
            rep.excluded.append({"path": _rel(cell_dir, root), "reason": "empty cell (no chromosome images)"})
    return rows, rep


def _finish(rows: list[dict], dataset: str, rep: Report) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in
                                     ("cell_count", "cell_formula", "abnormal", "incomplete")])
    if df.empty:
        raise DataError(f"no images found for dataset {dataset}")
    rep.converted = int(df["mode"].isin(["RGB", "RGBA", "P", "LA"]).sum())
    g = df.groupby("cell")["label"]
    df["cell_count"] = g.transform("size").astype(int)
    formulas = g.apply(lambda s: karyotype.formula(s.tolist()))
    df["cell_formula"] = df["cell"].map(formulas)
    df["incomplete"] = df["cell_count"] < INCOMPLETE_BELOW
    df["abnormal"] = ~df["cell_formula"].map(karyotype.is_normal) & ~df["incomplete"]
    return df[COLUMNS].reset_index(drop=True)


def build_manifest(dataset: str, root: Path | None = None, on_error: str = "raise",
                   synthetic_seed: int = 0, header_cache: Path | None = None) -> tuple[pd.DataFrame, Report]:
    """One row per image: dataset, path (relative to the data root), cell, slide, label 1..24, homologue,
    width, height, mode, cell_count, cell_formula, abnormal, incomplete. `header_cache`: a file that
    remembers the image headers between builds (HeaderCache); the folders are listed afresh each time."""
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    headers = HeaderCache(header_cache)
    if dataset == "pki3":
        rows, rep = read_pki3(root, on_error, headers)
    elif dataset == "bioimlab":
        rows, rep = read_bioimlab(root, on_error, headers)
    elif dataset == "synthetic":
        from chromo.data.synthetic import synthetic_rows

        rows, rep = synthetic_rows(seed=synthetic_seed), Report()
    else:
        raise DataError(f"unknown dataset {dataset!r}; choose pki3, bioimlab or synthetic")
    df = _finish(rows, dataset, rep)
    headers.save()
    return df, rep


def cell_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: slide, count, formula, flags."""
    return (manifest.groupby("cell", sort=False)
            .agg(slide=("slide", "first"), count=("cell_count", "first"), formula=("cell_formula", "first"),
                 abnormal=("abnormal", "first"), incomplete=("incomplete", "first"))
            .reset_index())


def summary(cfg, dataset: str, manifest_out: str | None = None, skip_unreadable: bool = False) -> dict:
    """`chromo data summary`: counts, abnormal and incomplete cells, formulas, exclusions of a data set; with
    `manifest_out`, the manifest also written there (refused before the slow build if it names a folder)."""
    from chromo.io import atomic_write_text

    if manifest_out:
        out_path = Path(manifest_out)
        if out_path.is_dir() or manifest_out.endswith(("/", "\\")):
            raise ValueError(f"--manifest-out {manifest_out}: is a folder; give a file name such as "
                             f"{out_path / (dataset + '-manifest.csv')}")
        parent = next((q for q in out_path.absolute().parents if q.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ValueError(f"--manifest-out {manifest_out}: {parent} is a file, not a folder")
    root = None if dataset == "synthetic" else cfg.data_root()
    m, rep = build_manifest(dataset, root, "skip" if skip_unreadable else "raise", cfg.seed,
                            cfg.header_cache(dataset))
    cells = cell_table(m)
    out = {"dataset": dataset, "data_dir": str(root) if root else None, "cells": len(cells), "images": len(m),
           "slides": int(m["slide"].nunique()) if dataset != "bioimlab" else None,
           "classes": int(m["label"].nunique()),
           "cell_sizes": {str(k): int(v) for k, v in cells["count"].value_counts().sort_index().items()},
           "abnormal_cells": int(cells["abnormal"].sum()), "incomplete_cells": int(cells["incomplete"].sum()),
           "formulas": {k: int(v) for k, v in cells["formula"].value_counts().items()},
           "converted_to_grayscale": rep.converted, "excluded": rep.excluded, "skipped": rep.skipped}
    if manifest_out:
        atomic_write_text(Path(manifest_out), m.to_csv(index=False))
        out["manifest"] = manifest_out
    return out


def load_image(row, root: Path | None) -> np.ndarray:
    """Decoded grayscale uint8 array of one manifest row (RGB/RGBA converted with ITU-R 601 luma)."""
    if row["dataset"] == "synthetic":
        from chromo.data.synthetic import render_row

        return render_row(row)
    return read_gray(Path(root) / row["path"])


def read_gray(path: Path, notes: list | None = None) -> np.ndarray:
    """One image file as grayscale uint8 (RGBA/LA flattened onto white, as the karyogram was drawn).

    8-bit files (L, P, RGB, ...) are read exactly as PIL's convert("L") gives them. Wider files (16-bit or
    32-bit integer, 12-bit values stored in 16 bits, float) are rescaled linearly from the image's own
    min..max to 0..255 (a constant image becomes all zero), since PIL would clip them at 255; the pipeline
    normalises the background per image anyway, so only the contrast stretch differs from an 8-bit file.
    Each such conversion appends {"file", "from": "<dtype> (min .., max ..)"} to `notes` when given.
    NaN or infinite pixels are a DataError."""
    try:
        with Image.open(path) as im:
            if im.mode in ("RGBA", "LA"):
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im.convert("RGBA"))
            wide = im.mode in ("I", "F") or im.mode.startswith("I;16")
            a = np.asarray(im) if wide else np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable image ({e})") from e
    if a.size == 0:
        raise DataError(f"{path}: empty image")
    if wide:
        a = _rescale_wide(a, path, notes)
    return a


def _rescale_wide(a: np.ndarray, path: Path, notes: list | None) -> np.ndarray:
    """A 16/32-bit or float image linearly from its min..max to uint8 (see read_gray)."""
    if not np.isfinite(a).all():
        raise DataError(f"{path}: NaN or infinite pixel values; fix or remove the file")
    x = a.astype(np.float64)
    lo, hi = x.min(), x.max()
    if notes is not None:
        notes.append({"file": str(path), "from": f"{a.dtype.name} (min {lo:g}, max {hi:g})"})
    if hi == lo:
        return np.zeros(a.shape, np.uint8)
    return np.round((x - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def listing_digest(dataset: str, root: Path | None) -> str:
    """A cheap fingerprint of a dataset's files (names, sizes, mtimes), to know when caches are stale."""
    h = hashlib.sha256(dataset.encode())
    if dataset != "synthetic":
        for p in sorted((Path(root) / dataset).rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(root)}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]
