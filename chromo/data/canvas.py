"""Preprocessing onto a canvas (square, or tall: [height, width]), and the packed uint8 cache.

Polarity is normalised (chromosome bright on a zero background, for G- and Q-band alike); each image is
placed on a canvas at ONE global scale per dataset, so relative size survives (chromosome 1 is about
five times chromosome 21). ``scale_mode='per_image'`` resizes each image to fill the canvas, for comparison.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from chromo.config import canvas_hw
from chromo.data.manifest import DataError, listing_digest, load_image
from chromo.io import atomic_write, atomic_write_json

DARK_ON_LIGHT = {"pki3": True, "bioimlab": False, "synthetic": False}
MARGIN = 2
CACHE_VERSION = 5


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


def canvas_text(canvas) -> str:
    """'64 px' for a square canvas, '96 x 48 px' (height x width) for a tall one."""
    h, w = canvas_hw(canvas)
    return f"{h} px" if h == w else f"{h} x {w} px"


def global_scale(sizes: np.ndarray, canvas, quantile: float = 0.995) -> float:
    """One scale per dataset (eq.-free, ours): the `quantile` of the objects (heights, widths [N, 2]) fills
    the canvas less a margin (on a square canvas: the quantile of max(height, width) fills its side); the few
    larger ones are shrunk to fit and reported."""
    ch, cw = canvas_hw(canvas)
    sizes = np.asarray(sizes)
    if ch == cw:
        return (ch - 2 * MARGIN) / float(np.quantile(sizes.max(axis=1), quantile))
    # [N] scale^-1 to fit
    need = np.maximum(sizes[:, 0] / (ch - 2 * MARGIN), sizes[:, 1] / (cw - 2 * MARGIN))
    return 1.0 / float(np.quantile(need, quantile))


def place(img: np.ndarray, canvas, scale: float | None) -> tuple[np.ndarray, bool]:
    """Resize by `scale` (None: fit this image) and centre on a zero canvas (a side, or [height, width]).
    Returns (canvas, clipped): an image larger than the canvas at the global scale is shrunk to fit and
    reported as clipped."""
    ch, cw = canvas_hw(canvas)
    h, w = img.shape
    fit = min((ch - 2 * MARGIN) / h, (cw - 2 * MARGIN) / w)
    s = fit if scale is None else scale
    clipped = scale is not None and s > fit
    s = min(s, fit)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    out = np.zeros((ch, cw), np.uint8)
    y0, x0 = (ch - nh) // 2, (cw - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out, clipped


def normalise(img: np.ndarray, dataset: str | None = None, orient: bool = False,
              dark_on_light: bool | None = None, straighten: bool = False) -> tuple[np.ndarray, float]:
    """Bright-on-zero, then either cropped to the chromosome, or (orient) the chromosome found, rotated so
    its principal axis is vertical and cropped to it (data.orient), and with `straighten` a bent one
    resampled along its centre line (data.straighten; needs orient). Returns (object, applied angle in
    degrees). Polarity comes from `dark_on_light`, else from the dataset."""
    if straighten and not orient:
        raise ValueError("straighten needs orient: the centre line is found on an upright chromosome")
    dol = DARK_ON_LIGHT.get(dataset, False) if dark_on_light is None else dark_on_light
    a = normalise_polarity(img, dol)
    if not orient:
        return crop(a), 0.0
    return upright(a, straighten)


def upright(a: np.ndarray, straighten: bool = False) -> tuple[np.ndarray, float]:
    """The chromosome of a bright-on-zero image turned upright and cropped (data.orient) and, with
    `straighten`, resampled along its centre line (data.straighten): (object, applied angle in degrees)."""
    from chromo.data.orient import orient
    from chromo.data.straighten import straighten as along_centre_line

    o, angle = orient(a)
    return (along_centre_line(o)[0] if straighten else o), angle


def survey(rows, root, dataset: str) -> tuple[list, list, np.ndarray]:
    """Each manifest row's chromosome upright (data.orient) and straightened: (upright objects, straightened
    objects, bends in px). A chromosome below the bend threshold is the same object in both lists."""
    from chromo.data.straighten import straighten

    uprights, straight, bends = [], [], []
    for row in rows.to_dict("records"):
        o, _ = normalise(load_image(row, root), dataset, orient=True)
        s, b = straighten(o)
        uprights.append(o)
        straight.append(s)
        bends.append(b)
    return uprights, straight, np.array(bends)


def object_lengths(images: np.ndarray, scale: float | None, threshold: int = 12) -> np.ndarray:
    """Length of the chromosome on each canvas [N, H, W], in pixels of the source image: the longer side of
    the box of pixels above `threshold`, divided by the dataset's global scale (after orientation the
    chromosome is upright, so this is its length along the principal axis; per-image scaling has no common
    scale, then canvas pixels are returned). Measured on the chromosome, not on the file, whose margins
    differ between data sets (BioImLab's files are padded to 200 px)."""
    on = np.asarray(images) > threshold                        # [N, H, W]
    rows, cols = on.any(axis=2), on.any(axis=1)               # [N, H], [N, W]

    def extent(a):
        first, last = a.argmax(axis=1), a.shape[1] - a[:, ::-1].argmax(axis=1)
        return np.where(a.any(axis=1), last - first, 0)

    length = np.maximum(extent(rows), extent(cols)).astype(np.float64)
    return length / scale if scale else length


def object_areas(images: np.ndarray, threshold: int = 12) -> np.ndarray:
    """Area of the chromosome on each canvas [N, H, W]: its pixels above `threshold`, in canvas pixels (one
    scale per data set, so areas compare within a cell; karyotype.relative_size divides out the cell)."""
    return (np.asarray(images) > threshold).sum(axis=(1, 2)).astype(np.float64)


def orient_canvas(images: np.ndarray, canvas=None, straighten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Orientation of canvas images that are already at the dataset's scale (the simulated MI queries):
    each chromosome found, turned upright and centred again at the same scale, on `canvas` (default: the
    images' own shape). Returns (images, angles)."""
    shape = images.shape[1:] if canvas is None else canvas_hw(canvas)
    out, angles = np.zeros((len(images), *shape), np.uint8), np.zeros(len(images), np.float32)
    for i, img in enumerate(images):
        o, angles[i] = upright(np.asarray(img), straighten)
        out[i] = place(o, shape, 1.0)[0]
    return out, angles


def build_cache(manifest: pd.DataFrame, root: Path | None, cache_dir: Path, canvas,
                scale_mode: str = "global", quantile: float = 0.995, progress: bool = True,
                orient: bool = False, straighten: bool = False) -> tuple[np.ndarray, dict]:
    """Images of `manifest` (in its row order) as a memory-mapped uint8 array [N, height, width] (canvas_hw).
    Built once; rebuilt when the files, the manifest rows or the parameters change. With `orient`, each
    chromosome is turned upright first; meta["angles"] holds the angle applied to each image (degrees)."""
    dataset = manifest["dataset"].iloc[0]
    key_src = json.dumps([CACHE_VERSION, dataset, canvas, scale_mode, quantile, orient, straighten,
                          listing_digest(dataset, root),
                          pd.util.hash_pandas_object(manifest[["path", "label"]], index=False).sum().item()])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    npy, meta_path = Path(cache_dir) / dataset / f"{key}.npy", Path(cache_dir) / dataset / f"{key}.json"
    if npy.exists() and meta_path.exists():
        return np.load(npy, mmap_mode="r"), json.loads(meta_path.read_text())
    rows = manifest.to_dict("records")
    objects, angles = [], []
    for row in tqdm(rows, desc=f"decode {dataset}", disable=None if progress else True, mininterval=2):
        try:
            o, angle = normalise(load_image(row, root), dataset, orient, straighten=straighten)
            objects.append(o)
            angles.append(round(float(angle), 2))
        except DataError:
            raise
        except Exception as e:  # a decoder failing mid-file
            raise DataError(f"{Path(root or '.') / row['path']}: cannot preprocess ({e})") from e
    scale = global_scale(np.array([o.shape for o in objects]), canvas,
                         quantile) if scale_mode == "global" else None
    arr = np.zeros((len(manifest), *canvas_hw(canvas)), np.uint8)
    clipped = []
    for i, o in enumerate(objects):
        arr[i], c = place(o, canvas, scale)
        if c:
            clipped.append(rows[i]["path"])
    meta = {"dataset": dataset, "canvas": canvas, "scale_mode": scale_mode, "scale": scale, "orient": orient,
            "straighten": straighten,
            "images": len(manifest), "clipped_to_fit": clipped, "key": key, "angles": angles}
    atomic_write(npy, lambda f: np.save(f, arr))
    atomic_write_json(meta_path, meta)
    return np.load(npy, mmap_mode="r"), meta
