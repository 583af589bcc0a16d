"""Augmentation (the paper's horizontal flip, optional small rotations, microscope optics) and simulated
microscope images.

Simulated MI. The paper queries with microscope-image (MI) chromosomes, cut one by one by hand from
metaphase images: in any orientation, often bent, and with touching neighbours at most partly inside the
cut. pki3 has only karyotype-style (KI) cuts (upright, alone, on a zero canvas at one global scale), so its
MI queries are *simulated* from the same chromosomes by four factors, `FACTORS`:

- rotate: any orientation, angle uniform in [0, 360) degrees about the canvas centre;
- bend: a sideways parabolic bend of the upright chromosome, the ends shifted by up to 12 % of the width;
- neighbour: the end of another chromosome of the same set entering from one side of the canvas, as a
  manual cut leaves a touching neighbour: at most half of it, only inside a border band of 8-20 % of the
  canvas, touching or overlapping the query's ends at most, never its centre;
- optics: Gaussian blur, down- then up-sampling (lower resolution), additive sensor noise.

They are applied in the order bend, rotate, neighbour, optics (details in `simulate_mi`). The query is
never rescaled, so the global scale (chromosome size) is kept. All random numbers come from
`_draws(seed, index)`, always all drawn in a fixed order, so a factor's parameters do not depend on which
other factors are on: an ablation (rotate; + bend; + neighbour; + optics) changes one thing at a time.
These are simulated images, not real microscope images, and are labelled so everywhere.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy import ndimage


def _draw(x: torch.Tensor, gen: torch.Generator, share) -> torch.Tensor:
    """One uniform number per image of the batch. With share = (n, positions), the numbers of a global batch
    of n images are drawn and this process's images take theirs (chromo.distributed: every process then
    augments its share exactly as one process would augment the whole batch)."""
    if share is None:
        return torch.rand(x.shape[0], generator=gen)
    n, positions = share
    return torch.rand(n, generator=gen)[torch.as_tensor(positions)]


def flip_batch(x: torch.Tensor, gen: torch.Generator, horizontal: bool = True, vertical: bool = False,
               share=None) -> torch.Tensor:
    """Horizontal flip of a random half of a batch [B, 1, H, W] (the paper doubles the set by flipping);
    with `vertical`, also an independent vertical flip of a random half (after orientation, which end of
    a chromosome is up is not known). `share`: see _draw."""
    x = x.clone()
    if horizontal:
        m = _draw(x, gen, share) < 0.5
        x[m] = x[m].flip(-1)
    if vertical:
        m = _draw(x, gen, share) < 0.5
        x[m] = x[m].flip(-2)
    return x


def rotate_batch(x: torch.Tensor, max_deg: float, gen: torch.Generator, share=None) -> torch.Tensor:
    """Small random rotations of a batch, by affine grids (bilinear, zero fill). `share`: see _draw."""
    if max_deg <= 0:
        return x
    a = (_draw(x, gen, share) * 2 - 1) * (max_deg * np.pi / 180)
    c, s = torch.cos(a), torch.sin(a)
    theta = torch.stack([torch.stack([c, -s, torch.zeros_like(c)], 1),
                         torch.stack([s, c, torch.zeros_like(c)], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, align_corners=False)


# optics_batch's ranges: wider than simulate_mi's on a 64 px square (blur 0.4-1.0, down-sampling 0.55-0.85,
# noise sd 6), so training covers the simulated MI's optics without being fitted to its exact ranges. The blur
# is in canvas pixels: on the tall 96 x 48 canvas the simulation's blur scales to 0.6-1.5 px, partly beyond
# it, unless the profile scales it the same way (optics_blur_scaled: blur_scale = max(H, W) / 64, 0.3-1.8 px
# there)
OPTICS_BLUR = (0.2, 1.2)        # Gaussian sigma, pixels
OPTICS_DOWN = (0.5, 1.0)        # down-sampling factor (1: none)
OPTICS_NOISE = (0.0, 8.0)       # noise sd, grey levels (of 255)


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    return k / k.sum()


def optics_batch(x: torch.Tensor, p: float, gen: torch.Generator, share=None,
                 blur_scale: float = 1.0) -> torch.Tensor:
    """Microscope optics on a random fraction `p` of a batch [B, 1, H, W] in [0, 1] (chromosome bright on
    zero), as a training augmentation: for each chosen image, Gaussian blur (sigma ~ U(OPTICS_BLUR) x
    blur_scale), bilinear down-sampling by ~ U(OPTICS_DOWN) and back, additive Gaussian noise (sd ~
    U(OPTICS_NOISE) grey levels) on the chromosome and 2 px around it (where the data layer's orientation
    keeps the pixels of a query; the zero background stays zero), then rounding to grey levels. The same kind
    of degradation as simulate_mi's "optics" factor, over wider ranges. All numbers are drawn for every image
    whatever `p`, in a fixed order; `share`: see _draw."""
    if p <= 0:
        return x
    u = [_draw(x, gen, share) for _ in range(4)]          # chosen?, blur, down-sampling, noise sd
    if share is None:
        noise = torch.randn(x.shape, generator=gen)
    else:
        n, positions = share
        noise = torch.randn((n, *x.shape[1:]), generator=gen)[torch.as_tensor(positions)]
    x = x.clone()
    h, w = x.shape[-2:]
    f = torch.nn.functional
    for i in torch.nonzero(u[0] < p).flatten().tolist():
        sigma = (OPTICS_BLUR[0] + float(u[1][i]) * (OPTICS_BLUR[1] - OPTICS_BLUR[0])) * blur_scale
        down = OPTICS_DOWN[0] + float(u[2][i]) * (OPTICS_DOWN[1] - OPTICS_DOWN[0])
        sd = OPTICS_NOISE[0] + float(u[3][i]) * (OPTICS_NOISE[1] - OPTICS_NOISE[0])
        k = _gauss_kernel(sigma)
        a = x[i:i + 1].float()                                                     # [1, 1, H, W]
        a = f.conv2d(a, k.view(1, 1, 1, -1), padding=(0, len(k) // 2))
        a = f.conv2d(a, k.view(1, 1, -1, 1), padding=(len(k) // 2, 0))
        small = f.interpolate(a, size=(max(2, round(h * down)), max(2, round(w * down))), mode="bilinear",
                              align_corners=False)
        a = f.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        near = f.max_pool2d((a > 0.5 / 255).float(), 5, stride=1, padding=2)     # the object dilated by 2 px
        a = a + near * noise[i:i + 1] * (sd / 255)
        x[i:i + 1] = (a.clamp(0, 1) * 255).round() / 255
    return x


FACTORS = ("rotate", "bend", "neighbour", "optics")


def _draws(seed: int, index: int) -> dict:
    """All random parameters of one simulated MI image, drawn always and in this fixed order."""
    rng = np.random.default_rng([seed, index])
    return {
        "angle": rng.uniform(0, 360),        # rotate: degrees, counter-clockwise as displayed
        "bend": rng.uniform(-0.12, 0.12),    # bend: end shift, fraction of the width
        "nb_side": int(rng.integers(4)),     # neighbour: 0 top, 1 left, 2 bottom, 3 right
        "nb_tilt": rng.uniform(-60, 60),     # neighbour: degrees off perpendicular to the side
        "nb_end": int(rng.integers(2)),      # neighbour: which end enters (1: turned by 180 degrees)
        "nb_depth": rng.uniform(0.08, 0.20),  # neighbour: band depth, fraction of the canvas
        "nb_pos": rng.uniform(0.15, 0.85),   # neighbour: where along the side its end enters
        "nb_gain": rng.uniform(0.6, 1.0),    # neighbour: brightness factor
        "blur": rng.uniform(0.4, 1.0),       # optics: Gaussian sigma, pixels of a 64 px canvas
        "down": rng.uniform(0.55, 0.85),     # optics: down-sampling factor
        "noise_seed": int(rng.integers(2**63)),  # optics: seed of the N(0, 6^2) noise field
    }


def _check_factors(factors) -> frozenset:
    factors = (factors,) if isinstance(factors, str) else tuple(factors)
    unknown = sorted(set(factors) - set(FACTORS))
    if unknown:
        raise ValueError(f"unknown simulated-MI factors {unknown}; known: {list(FACTORS)}")
    return frozenset(factors)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def _neighbour_layer(nb: np.ndarray, shape: tuple[int, int], p: dict) -> np.ndarray:
    """The neighbour's piece inside a border band, on a zero layer of `shape`. Built for the top side on
    the suitably transposed shape, then turned by np.rot90 to the drawn side."""
    k = p["nb_side"]
    hs, ws = shape if k % 2 == 0 else shape[::-1]
    layer = np.zeros((hs, ws), np.float32)
    ys, xs = np.nonzero(nb)
    if len(ys) == 0:
        return np.rot90(layer, k)
    t = np.deg2rad(p["nb_tilt"] + 180 * p["nb_end"])
    c, s = np.cos(t), np.sin(t)
    cy, cx = (nb.shape[0] - 1) / 2, (nb.shape[1] - 1) / 2
    # rotated neighbour pixels (about its centre); its lowest point is the end that enters from the top
    ry = -(xs - cx) * s + (ys - cy) * c
    rx = (xs - cx) * c + (ys - cy) * s
    i = int(np.argmax(ry))
    # its end reaches depth e: the band depth d, but at most half its extent (only partly inside)
    e = max(1, min(int(p["nb_depth"] * hs), int(0.5 * (ry[i] - ry.min() + 1))))
    ty, tx = e - 1 - ry[i], p["nb_pos"] * (ws - 1) - rx[i]
    # sample the rotated, shifted neighbour on the band rows only (bilinear, zero outside)
    yy, xx = _grid(e, ws)
    dy, dx = yy - ty, xx - tx
    src = [dx * s + dy * c + cy, dx * c - dy * s + cx]
    layer[:e] = ndimage.map_coordinates(nb.astype(np.float32), src, order=1, mode="constant") * p["nb_gain"]
    return np.rot90(layer, k)


def simulate_mi(img: np.ndarray, neighbour: np.ndarray, seed: int, index: int,
                factors=FACTORS) -> np.ndarray:
    """A simulated microscope-style (MI) version of one KI canvas (uint8, chromosome bright on zero).

    Not a real microscope image: a stand-in for the paper's hand-cut MI queries. The parameters are
    `_draws(seed, index)`: all drawn always, in a fixed order, so each factor's parameters are the same
    whichever other factors are on; the factors not in `factors` are skipped. On an h x w canvas with
    centre (cy, cx) = ((h-1)/2, (w-1)/2), in this order:

    1. "bend": row y is shifted sideways by a * ((y - cy) / (h/2))**2, a ~ U(-0.12, 0.12) * w (a
       parabola: the centre row stays, the ends move by up to 0.12 w).
    2. "rotate": rotation about the canvas centre by ~ U(0, 360) degrees, counter-clockwise as
       displayed. Bend and rotation are one bilinear resampling, zero outside; nothing is rescaled.
    3. "neighbour": the end of `neighbour` (another upright canvas of the set) entering from one side
       (top, left, bottom or right, equally likely), as a manual cut leaves a touching chromosome:
       `neighbour` is turned about its centre to point into the canvas, tilted by ~ U(-60, 60) degrees
       off perpendicular to the side, either end first (equally likely), and shifted so that its end
       lies at depth e from the side, U(0.15, 0.85) of the way along it, where e = min(d, half the
       neighbour's extent across the side) and d = floor(U(0.08, 0.20) * h, or * w for left/right).
       Only the rows (columns) within e of the side are kept (bilinear, zero outside), times
       U(0.6, 1.0), combined with the image by pixelwise maximum. So at most half of the neighbour
       enters and it changes at most 20 % of the canvas, all within d of one side, never the centre;
       it may touch or overlap the query's ends.
    4. "optics": Gaussian blur, sigma ~ U(0.4, 1.0) px times max(h, w) / 64 (the same blur relative to the
       chromosome on any canvas: a 64 px square keeps U(0.4, 1.0) px); bilinear down-sampling by
       ~ U(0.55, 0.85) and back to h x w; additive Gaussian noise, sd 6 grey levels.

    Then rounded and clipped to uint8. `factors=()` returns a copy of `img`; unknown factor names raise
    ValueError.
    """
    on = _check_factors(factors)
    if not on:
        return np.array(img, dtype=np.uint8)
    p = _draws(seed, index)
    h, w = img.shape
    a = img.astype(np.float32)
    if on & {"bend", "rotate"}:
        t = np.deg2rad(p["angle"]) if "rotate" in on else 0.0
        amp = p["bend"] * w if "bend" in on else 0.0
        cy, cx = (h - 1) / 2, (w - 1) / 2
        yy, xx = _grid(h, w)
        dy, dx = yy - cy, xx - cx
        # inverse rotation (output -> upright bent frame), then inverse bend (row-wise shift)
        yb = dx * np.sin(t) + dy * np.cos(t) + cy
        xb = dx * np.cos(t) - dy * np.sin(t) + cx
        xb = xb - amp * ((yb - cy) / (h / 2)) ** 2
        a = ndimage.map_coordinates(a, [yb, xb], order=1, mode="constant")
    if "neighbour" in on:
        a = np.maximum(a, _neighbour_layer(np.asarray(neighbour), (h, w), p))
    if "optics" in on:
        a = ndimage.gaussian_filter(a, p["blur"] * max(h, w) / 64)
        small = ndimage.zoom(a, p["down"], order=1)
        a = ndimage.zoom(small, (h / small.shape[0], w / small.shape[1]), order=1)[:h, :w]
        a = a + 6.0 * np.random.default_rng(p["noise_seed"]).standard_normal(a.shape, np.float32)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def simulate_mi_set(images: np.ndarray, seed: int, factors=FACTORS) -> np.ndarray:
    """Simulated MI versions of a set of canvases [N, H, W] (see `simulate_mi`); image i uses index i and,
    as neighbour, image j drawn from the same set by default_rng([seed, i, 1]) (the next image if j == i)."""
    _check_factors(factors)
    images = np.asarray(images)
    out = np.empty(images.shape, np.uint8)
    n = len(images)
    for i in range(n):
        j = int(np.random.default_rng([seed, i, 1]).integers(n))
        out[i] = simulate_mi(images[i], images[j if j != i else (i + 1) % n], seed, i, factors)
    return out


def rotated_copy(src, dst, seed: int, background: int) -> list:
    """Every image file under folder `src` rotated by a random angle (uniform 0-360 degrees, canvas expanded,
    corners filled with `background`: 255 for dark-on-white cuts, 0 for bright-on-black), written under `dst`
    with the same relative path: a cell as a microscope might show it. Returns the angles."""
    from pathlib import Path

    from PIL import Image

    rng = np.random.default_rng(seed)
    angles = []
    for f in sorted(p for p in Path(src).rglob("*") if p.is_file() and p.suffix.lower() in (".tif", ".tiff",
                                                                                            ".bmp", ".png")):
        out = Path(dst) / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        angles.append(float(rng.uniform(0, 360)))
        with Image.open(f) as im:
            im.convert("L").rotate(angles[-1], resample=Image.BILINEAR, expand=True,
                                   fillcolor=background).save(out)
    return angles
