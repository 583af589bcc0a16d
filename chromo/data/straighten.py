"""Straightening of a bent chromosome: resample the image along its centre line (the medial axis of an
upright chromosome), so that a banana- or V-shaped chromosome becomes a straight one with its bands in
order from end to end.

Input: one upright chromosome as ``chromo.data.orient.orient`` returns it (bright on zero, long axis
vertical, cropped). After orientation every row of a bent chromosome crosses it once (the bend opens to
one side), so the centre line is the intensity centroid of each row, smoothed along the rows. The image
is then sampled (bilinear) along that line at unit arc-length steps and, at each step, along the normal
over the chromosome's width. A chromosome whose centre line stays within ``MIN_BEND`` of a straight line
is returned unchanged (no interpolation blur). numpy + scipy only.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from chromo.data.orient import nonzero_box, find_chromosome

MIN_BEND = 0.25      # straighten only if the centre line leaves its chord by this fraction of the width ...
MIN_BEND_PX = 2.0    # ... and by at least this many pixels
SMOOTH = 0.08        # Gaussian smoothing of the centre line, sigma as a fraction of the height (>= 1 px)
MARGIN = 2           # pixels sampled beyond the half-width on each side, and beyond each end


def centre_line(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs): the centre line of an upright chromosome, one point per row that the mask crosses: the
    intensity centroid of the masked row, Gaussian-smoothed along the rows."""
    w = np.where(mask, img.astype(np.float64), 0.0) + mask * 1e-6      # a masked row of zeros still counts
    ys = np.flatnonzero(mask.any(axis=1))
    ys = np.arange(ys[0], ys[-1] + 1)
    row = w[ys]
    xs = (row * np.arange(img.shape[1])).sum(axis=1) / np.maximum(row.sum(axis=1), 1e-12)
    gap = row.sum(axis=1) <= 1e-9                                        # rows inside a gap of the mask
    if gap.any():
        xs[gap] = np.interp(ys[gap], ys[~gap], xs[~gap])
    sigma = max(1.0, SMOOTH * len(ys))
    return ys.astype(np.float64), ndi.gaussian_filter1d(xs, sigma, mode="nearest")


def bend(ys: np.ndarray, xs: np.ndarray) -> float:
    """Largest distance (px) of the centre line from the straight chord joining its ends."""
    if len(ys) < 3:
        return 0.0
    p0, p1 = np.array([xs[0], ys[0]]), np.array([xs[-1], ys[-1]])
    d = p1 - p0
    n = np.hypot(*d)
    rel = np.stack([xs, ys], axis=1) - p0
    return float(np.abs(rel[:, 0] * d[1] - rel[:, 1] * d[0]).max() / n) if n > 0 else 0.0


def straighten(img: np.ndarray) -> tuple[np.ndarray, float]:
    """(image, bend): the chromosome resampled along its centre line, cropped; bend = the centre line's
    largest distance from its chord in px (0.0 when there is no chromosome). Unchanged when the bend is
    below max(MIN_BEND x width, MIN_BEND_PX). The output is as long as the centre line (plus MARGIN at each
    end) and 2 x (half-width + MARGIN) + 1 wide; half-width = 0.6 x area / length of the mask, so that at a
    sharp bend the other arm is not sampled."""
    img = np.asarray(img)
    mask = find_chromosome(img)
    if not mask.any():
        return img, 0.0
    ys, xs = centre_line(img, mask)
    b = bend(ys, xs)
    width = mask.sum() / len(ys)                         # mean width of the mask along its rows
    if b < max(MIN_BEND * width, MIN_BEND_PX):
        return img, b
    # arc length along the centre line, extended by MARGIN px beyond each end along the end tangents
    pts = np.stack([xs, ys], axis=1)                     # [R, 2] (x, y)
    t0 = pts[min(2, len(pts) - 1)] - pts[0]
    t1 = pts[-1] - pts[max(len(pts) - 3, 0)]
    t0, t1 = t0 / np.hypot(*t0), t1 / np.hypot(*t1)
    pts = np.concatenate([pts[0] - t0 * np.arange(MARGIN, 0, -1)[:, None], pts,
                          pts[-1] + t1 * np.arange(1, MARGIN + 1)[:, None]])
    seg = np.hypot(*np.diff(pts, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])          # [R'] arc length at each point
    steps = np.arange(0.0, s[-1] + 1e-9, 1.0)            # unit steps along the line
    cx, cy = np.interp(steps, s, pts[:, 0]), np.interp(steps, s, pts[:, 1])
    tx, ty = np.gradient(cx), np.gradient(cy)
    norm = np.maximum(np.hypot(tx, ty), 1e-12)
    nx, ny = ty / norm, -tx / norm                       # the normal, pointing to +x on a vertical line
    half = int(np.ceil(0.6 * mask.sum() / s[-1])) + MARGIN
    u = np.arange(-half, half + 1, dtype=np.float64)     # [W] offsets along the normal
    sx = cx[:, None] + u[None, :] * nx[:, None]          # [L, W] sample positions
    sy = cy[:, None] + u[None, :] * ny[:, None]
    keep = ndi.maximum_filter(mask, size=5)              # the chromosome and 2 px around it, nothing else
    src = np.where(keep, img, 0).astype(np.float32)
    out = ndi.map_coordinates(src, [sy, sx], order=1, mode="constant", cval=0.0, prefilter=False)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if not out.any():
        return img, b
    return np.ascontiguousarray(out[nonzero_box(out)]), b
