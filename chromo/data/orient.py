"""Orientation normalisation of one chromosome image: find it, measure its long axis, rotate it upright.

Images are bright-on-zero uint8 (after ``chromo.data.canvas.normalise_polarity``). Angles follow
``scipy.ndimage.rotate`` / ``PIL.Image.rotate``: degrees, positive = counter-clockwise as displayed
(rows growing downward). numpy + scipy only.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

SIGMA = 1.0          # Gaussian smoothing before thresholding (px)
LOW = 1 / 3          # hysteresis: grow Otsu's foreground down to this fraction of its threshold
DILATE = 2           # the kept region is the mask dilated by this many px
PAD = DILATE + 2     # padding around the component's box before rotating
_EIGHT = np.ones((3, 3), bool)


def otsu(levels: np.ndarray) -> int:
    """Otsu's threshold of a uint8 array: foreground is ``levels > t``."""
    p = np.bincount(levels.ravel(), minlength=256).astype(np.float64)
    p /= p.sum()
    w0 = np.cumsum(p)                       # weight of class <= t
    m0 = np.cumsum(p * np.arange(256))      # its first moment
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0[-1] * w0 - m0) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = -1.0
    return int(np.argmax(between))


def find_chromosome(img: np.ndarray) -> np.ndarray:
    """Boolean mask of the chromosome in a bright-on-zero uint8 image (all False if there is none).

    Gaussian smoothing, then Otsu's threshold t with hysteresis: components of the pixels above t/3 (in the
    smoothed image and, so that smoothing bridges no gap to a neighbour, in the raw one) that contain a
    smoothed pixel above t (a tight karyogram cut has little background, so t falls between pale and dark
    bands; growing to t/3 keeps the pale bands). Of these 8-connected components the one with
    the largest area weighted by exp(-4 r^2) is kept, r = distance of its centroid from the image centre
    over half the diagonal (a neighbour cut off at the border loses to the central query); holes filled.
    """
    img = np.asarray(img)
    mask = np.zeros(img.shape, bool)
    if img.size == 0 or not img.any():
        return mask
    q = ndi.gaussian_filter(img.astype(np.float32), SIGMA).astype(np.uint8)  # truncation: levels 0..255
    t = otsu(q) if q.min() < q.max() else -1    # flat image: all of it, or nothing
    lab, n = ndi.label((q > t * LOW) & (img > t * LOW), structure=_EIGHT)
    if n == 0:
        return mask
    flat = lab.ravel()
    area = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
    seeded = np.bincount(lab[q > t], minlength=n + 1)[1:] > 0
    ys, xs = np.indices(img.shape)
    cy = np.bincount(flat, ys.ravel(), minlength=n + 1)[1:] / area
    cx = np.bincount(flat, xs.ravel(), minlength=n + 1)[1:] / area
    h, w = img.shape
    r2 = ((cy - (h - 1) / 2) ** 2 + (cx - (w - 1) / 2) ** 2) / (0.25 * (h * h + w * w))
    best = int(np.argmax(np.where(seeded, area * np.exp(-4.0 * r2), -1.0))) + 1
    box = ndi.find_objects(lab, max_label=best)[best - 1]
    mask[box] = _fill_holes(lab[box] == best)
    return mask


def _fill_holes(m: np.ndarray) -> np.ndarray:
    """binary_fill_holes, faster on small masks: the outside is the 4-connected background at the rim."""
    bg, _ = ndi.label(np.pad(~m, 1, constant_values=True))   # label 1: the outside, from the padded rim
    return bg[1:-1, 1:-1] != 1


def principal_angle(mask: np.ndarray) -> tuple[float, float]:
    """(angle, elongation) of a mask from its second moments.

    angle: degrees in (-90, 90], the counter-clockwise rotation (scipy/PIL convention) that makes the long
    axis vertical; elongation: sqrt(largest / smallest eigenvalue of the pixel coordinate covariance, each
    pixel counted as a unit square, i.e. + 1/12 on both axes so a 1-px line stays finite). (0.0, 1.0) if
    empty.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return 0.0, 1.0
    x = xs - xs.mean()
    y = ys - ys.mean()
    sxx, syy, sxy = (x * x).mean() + 1 / 12, (y * y).mean() + 1 / 12, (x * y).mean()
    # long axis direction, measured from +x toward +y (downward): theta; as displayed it is at -theta
    theta = 0.5 * np.degrees(np.arctan2(2 * sxy, sxx - syy))
    angle = 90.0 + theta                    # CCW rotation taking -theta to +90 (vertical)
    angle = angle - 180.0 if angle > 90.0 else angle
    angle = 90.0 if angle <= -90.0 else angle
    half_tr, det = (sxx + syy) / 2, sxx * syy - sxy * sxy
    disc = np.sqrt(max(half_tr * half_tr - det, 0.0))
    lo = max(half_tr - disc, 1e-12)
    return float(angle) + 0.0, float(np.sqrt((half_tr + disc) / lo))


def nonzero_box(a: np.ndarray) -> tuple[slice, slice]:
    """(rows, cols) slices of the bounding box of the nonzero pixels of a 2-D array that has some."""
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def orient(img: np.ndarray, min_angle: float = 2.0, min_elongation: float = 1.25) -> tuple[np.ndarray, float]:
    """The chromosome of a bright-on-zero uint8 image, upright, masked and cropped: (uint8 image, angle).

    Pixels outside the mask dilated by 2 px are set to 0 (noise, neighbours); the rest is rotated by
    ``principal_angle`` (bilinear) unless |angle| < min_angle (kept as is, no interpolation blur) or
    elongation < min_elongation (round: no long axis), then cropped to its nonzero bounding box.
    An image without foreground is returned unchanged with angle 0.0.
    """
    img = np.asarray(img)
    mask = find_chromosome(img)
    if not mask.any():
        return img, 0.0
    angle, elong = principal_angle(mask)
    # work on the component's box, padded, so dilation and rotation touch few pixels
    (y0, y1), (x0, x1) = [(s.start, s.stop) for s in ndi.find_objects(mask.view(np.uint8))[0]]
    h, w = img.shape
    y0, x0, y1, x1 = max(y0 - PAD, 0), max(x0 - PAD, 0), min(y1 + PAD, h), min(x1 + PAD, w)
    keep = ndi.maximum_filter(mask[y0:y1, x0:x1], size=2 * DILATE + 1)   # dilation by DILATE px (square)
    sub = np.where(keep, img[y0:y1, x0:x1], 0).astype(np.uint8)
    if abs(angle) < min_angle or elong < min_elongation:
        angle = 0.0
    else:
        rot = ndi.rotate(np.pad(sub.astype(np.float32), 1), angle, order=1, reshape=True, prefilter=False)
        sub = np.clip(np.rint(rot), 0, 255).astype(np.uint8)
    if not sub.any():                       # mask of pixels that were all 0 (flat image edge case)
        return sub, angle
    return np.ascontiguousarray(sub[nonzero_box(sub)]), angle
