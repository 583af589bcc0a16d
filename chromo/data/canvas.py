"""Preprocessing onto a square canvas, and the packed uint8 cache.

Polarity is normalised (chromosome bright on a zero background, for G- and Q-band alike); each image is
placed on a canvas at ONE global scale per dataset, so relative size survives (chromosome 1 is about
five times chromosome 21). ``scale_mode='per_image'`` resizes each image to fill the canvas, for comparison.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from chromo.data.manifest import DataError, listing_digest, load_image
from chromo.io import atomic_write_json, _atomic

DARK_ON_LIGHT = {"pki3": True, "bioimlab": False, "synthetic": False}
MARGIN = 2
CACHE_VERSION = 3


def normalise_polarity(img: np.ndarray, dark_on_light: bool) -> np.ndarray:
    """Chromosome bright on zero: invert G-band karyogram cuts, then subtract the border median."""
    a = img.astype(np.int16)
    if dark_on_light:
        a = 255 - a
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return np.clip(a - np.median(border), 0, 255).astype(np.uint8)


def crop(img: np.ndarray, threshold: int = 12) -> np.ndarray:
    """The bounding box of pixels above `threshold` (files of microscope cuts carry wide black margins)."""
    ys, xs = np.nonzero(img > threshold)
    if len(ys) == 0:
        return img
    return img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def global_scale(sizes: np.ndarray, canvas: int, quantile: float = 0.995) -> float:
    """One scale per dataset (eq.-free, ours): the `quantile` of the objects' max(height, width) fills the
    canvas less a margin; the few larger ones are shrunk to fit and reported."""
    big = float(np.quantile(np.asarray(sizes).max(axis=1), quantile))
    return (canvas - 2 * MARGIN) / big


def place(img: np.ndarray, canvas: int, scale: float | None) -> tuple[np.ndarray, bool]:
    """Resize by `scale` (None: fit this image) and centre on a zero canvas. Returns (canvas, clipped):
    an image larger than the canvas at the global scale is shrunk to fit and reported as clipped."""
    h, w = img.shape
    fit = (canvas - 2 * MARGIN) / max(h, w)
    s = fit if scale is None else scale
    clipped = scale is not None and s > fit
    s = min(s, fit)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    out = np.zeros((canvas, canvas), np.uint8)
    y0, x0 = (canvas - nh) // 2, (canvas - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out, clipped


def normalise(img: np.ndarray, dataset: str) -> np.ndarray:
    """Bright-on-zero, cropped to the chromosome."""
    return crop(normalise_polarity(img, DARK_ON_LIGHT.get(dataset, False)))


def preprocess(img: np.ndarray, dataset: str, canvas: int, scale: float | None) -> tuple[np.ndarray, bool]:
    return place(normalise(img, dataset), canvas, scale)


def build_cache(manifest: pd.DataFrame, root: Path | None, cache_dir: Path, canvas: int,
                scale_mode: str = "global", quantile: float = 0.995, progress: bool = True) -> tuple[np.ndarray, dict]:
    """Images of `manifest` (in its row order) as a memory-mapped uint8 array [N, canvas, canvas].
    Built once; rebuilt when the files, the manifest rows or the parameters change."""
    dataset = manifest["dataset"].iloc[0]
    key_src = json.dumps([CACHE_VERSION, dataset, canvas, scale_mode, quantile, listing_digest(dataset, root),
                          pd.util.hash_pandas_object(manifest[["path", "label"]], index=False).sum().item()])
    import hashlib

    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    npy, meta_path = Path(cache_dir) / dataset / f"{key}.npy", Path(cache_dir) / dataset / f"{key}.json"
    if npy.exists() and meta_path.exists():
        return np.load(npy, mmap_mode="r"), json.loads(meta_path.read_text())
    rows = manifest.to_dict("records")
    objects = []
    for row in tqdm(rows, desc=f"decode {dataset}", disable=None if progress else True, mininterval=2):
        try:
            objects.append(normalise(load_image(row, root), dataset))
        except DataError:
            raise
        except Exception as e:  # a decoder failing mid-file
            raise DataError(f"{Path(root or '.') / row['path']}: cannot preprocess ({e})") from e
    scale = global_scale(np.array([o.shape for o in objects]), canvas, quantile) if scale_mode == "global" else None
    arr = np.zeros((len(manifest), canvas, canvas), np.uint8)
    clipped = []
    for i, o in enumerate(objects):
        arr[i], c = place(o, canvas, scale)
        if c:
            clipped.append(rows[i]["path"])
    meta = {"dataset": dataset, "canvas": canvas, "scale_mode": scale_mode, "scale": scale,
            "images": len(manifest), "clipped_to_fit": clipped, "key": key}
    _atomic(npy, lambda f: np.save(f, arr))
    atomic_write_json(meta_path, meta)
    return np.load(npy, mmap_mode="r"), meta
