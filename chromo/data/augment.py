"""Augmentation (the paper's horizontal flip, optional small rotations) and simulated microscope images.

Simulated MI: the paper queries with chromosomes cut from microscope images (rotated, bent, touching
neighbours). pki3 has only karyotype-style cuts, so we simulate MI versions of the same chromosomes:
random rotation, bending, partial occlusion by a neighbour, blur, down-scaling and noise, deterministic
per (seed, image index). They are simulated, not real microscope images, and labelled so everywhere.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage


def flip_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Horizontal flip of a random half of a batch [B, 1, H, W] (the paper doubles the set by flipping)."""
    m = torch.rand(x.shape[0], generator=gen) < 0.5
    x = x.clone()
    x[m] = x[m].flip(-1)
    return x


def rotate_batch(x: torch.Tensor, max_deg: float, gen: torch.Generator) -> torch.Tensor:
    """Small random rotations of a batch, by affine grids (bilinear, zero fill)."""
    if max_deg <= 0:
        return x
    a = (torch.rand(x.shape[0], generator=gen) * 2 - 1) * (max_deg * np.pi / 180)
    c, s = torch.cos(a), torch.sin(a)
    theta = torch.stack([torch.stack([c, -s, torch.zeros_like(c)], 1), torch.stack([s, c, torch.zeros_like(c)], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, align_corners=False)


def simulate_mi(img: np.ndarray, neighbour: np.ndarray, seed: int, index: int) -> np.ndarray:
    """A microscope-style version of one canvas image (uint8, bright on zero), deterministic per (seed, index)."""
    rng = np.random.default_rng([seed, index])
    h, w = img.shape
    a = img.astype(np.float32)
    # bend: shift each row sideways along a parabola
    amp = rng.uniform(-0.12, 0.12) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shift = amp * ((yy - h / 2) / (h / 2)) ** 2
    a = ndimage.map_coordinates(a, [yy, xx - shift], order=1, mode="constant")
    # rotate to any orientation
    a = ndimage.rotate(a, rng.uniform(0, 360), reshape=False, order=1, mode="constant")
    # partial occlusion: a rotated neighbour overlapping from one side
    nb = ndimage.rotate(neighbour.astype(np.float32), rng.uniform(0, 360), reshape=False, order=1)
    ang = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(0.3, 0.45) * h
    nb = ndimage.shift(nb, (dist * np.sin(ang), dist * np.cos(ang)), order=1)
    a = np.maximum(a, nb * rng.uniform(0.6, 1.0))
    # optics: blur, lower resolution, sensor noise
    a = ndimage.gaussian_filter(a, rng.uniform(0.4, 1.0))
    f = rng.uniform(0.55, 0.85)
    small = ndimage.zoom(a, f, order=1)
    a = ndimage.zoom(small, (h / small.shape[0], w / small.shape[1]), order=1)[:h, :w]
    a = a + rng.normal(0, 6.0, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def simulate_mi_set(images: np.ndarray, seed: int) -> np.ndarray:
    """MI versions of a set of canvas images; each neighbour is drawn from the same set."""
    out = np.empty_like(images)
    n = len(images)
    for i in range(n):
        j = int(np.random.default_rng([seed, i, 1]).integers(n))
        out[i] = simulate_mi(np.asarray(images[i]), np.asarray(images[j if j != i else (i + 1) % n]), seed, i)
    return out
