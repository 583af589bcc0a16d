"""Orientation normalisation: sign convention, synthetic bars at known angles, noise and neighbours."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from chromo.data.orient import _fill_holes, find_chromosome, orient, otsu, principal_angle
from tests.conftest import DATA, needs_data


def bar(length: int = 60, width: int = 14) -> np.ndarray:
    """A vertical bright rounded bar with darker bands, on zero (uint8, length x width)."""
    y, x = np.mgrid[:length, :width] + 0.5
    r = width / 2
    yc = np.clip(y, r, length - r)          # distance to the bar's axis segment: rounded ends
    inside = (x - r) ** 2 + (y - yc) ** 2 <= r * r
    img = np.where(inside, 190, 0).astype(np.uint8)
    for b in (12, 27, 41):
        img[b:b + 4][inside[b:b + 4]] = 90
    return img


def on_canvas(img: np.ndarray, size: int = 100, angle: float = 0.0) -> np.ndarray:
    """`img` rotated CCW by `angle` degrees and centred on a zero size x size canvas."""
    r = ndi.rotate(img.astype(np.float32), angle, order=1, reshape=True) if angle else img.astype(np.float32)
    r = np.clip(np.rint(r), 0, 255).astype(np.uint8)
    out = np.zeros((size, size), np.uint8)
    y0, x0 = (size - r.shape[0]) // 2, (size - r.shape[1]) // 2
    out[y0:y0 + r.shape[0], x0:x0 + r.shape[1]] = r
    return out


def wrap(a: float) -> float:
    """Angle difference folded into (-90, 90]."""
    return (a + 90.0) % 180.0 - 90.0


def test_otsu_splits_two_levels():
    a = np.array([10] * 50 + [200] * 30, np.uint8)
    t = otsu(a)
    assert 10 <= t < 200


def test_fill_holes_matches_scipy():
    rng = np.random.default_rng(1)
    for _ in range(20):
        m = ndi.binary_opening(rng.random((30, 25)) < 0.6)
        np.testing.assert_array_equal(_fill_holes(m), ndi.binary_fill_holes(m))


def test_sign_convention_rows_grow_downward():
    # a "/" line as displayed: going right, rows go UP; at 60 deg CCW from +x it needs +30 deg CCW
    m = np.zeros((80, 80), bool)
    for s in np.linspace(-30, 30, 400):
        m[int(round(40 - s * np.sin(np.radians(60)))), int(round(40 + s * np.cos(np.radians(60))))] = True
    m = ndi.binary_dilation(m, iterations=2)
    angle, elong = principal_angle(m)
    assert angle == pytest.approx(30.0, abs=1.0)
    assert elong > 3
    # and rotating by that angle (scipy convention) makes it vertical
    r = ndi.rotate(m.astype(np.float32), angle, order=1, reshape=True) > 0.5
    assert abs(principal_angle(r)[0]) < 1.0
    # its mirror "\" needs the opposite rotation; horizontal needs 90, vertical 0
    assert principal_angle(m[:, ::-1])[0] == pytest.approx(-30.0, abs=1.0)
    assert principal_angle(np.ones((5, 40), bool))[0] == 90.0
    assert principal_angle(np.ones((40, 5), bool))[0] == 0.0


def test_principal_angle_empty_and_elongation():
    assert principal_angle(np.zeros((5, 5), bool)) == (0.0, 1.0)
    _, e = principal_angle(np.ones((40, 10), bool))
    assert e == pytest.approx(4.0, rel=0.01)


@pytest.mark.parametrize("rot", [-75, -30, -5, 10, 45, 89])
def test_rotated_bar_comes_back_vertical(rot):
    img = on_canvas(bar(), angle=rot)
    out, angle = orient(img)
    assert wrap(angle + rot) == pytest.approx(0.0, abs=1.0)      # undoes the known rotation
    assert out.dtype == np.uint8
    assert out.shape[0] > 2 * out.shape[1]
    assert abs(principal_angle(find_chromosome(out))[0]) < 2.0
    assert abs(principal_angle(out > 0)[0]) < 2.0


def test_vertical_cut_unchanged():
    b = bar()
    img = on_canvas(b)
    out, angle = orient(img)
    assert angle == 0.0
    np.testing.assert_array_equal(out, b)
    # already cropped: itself
    out2, angle2 = orient(b)
    assert angle2 == 0.0
    np.testing.assert_array_equal(out2, b)


def test_small_tilt_below_min_angle_not_rotated():
    img = on_canvas(bar(), angle=1.0)
    out, angle = orient(img)
    assert angle == 0.0
    assert out.sum() == img.sum()                                 # pixels kept, not interpolated


def test_disk_left_unrotated():
    y, x = np.mgrid[:60, :60]
    disk = np.where((y - 29.5) ** 2 + (x - 31.5) ** 2 <= 18 ** 2, 150, 0).astype(np.uint8)
    disk[25:30] //= 2                                             # a band must not give it an axis
    out, angle = orient(disk)
    assert angle == 0.0
    np.testing.assert_array_equal(out, disk[disk.any(1)][:, disk.any(0)])


def test_noise_and_neighbour_intrusion():
    rot = 30
    clean = on_canvas(bar(), angle=rot)
    rng = np.random.default_rng(0)
    img = clean.astype(np.float64)
    # a second bar, cut off by the left border
    img[10:24, :35] = np.maximum(img[10:24, :35], np.rot90(bar(48, 14))[:, -35:])
    img = np.clip(np.rint(img + rng.normal(0, 6, img.shape)), 0, 255).astype(np.uint8)
    mask = find_chromosome(img)
    ref = find_chromosome(clean)
    iou = (mask & ref).sum() / (mask | ref).sum()
    assert iou > 0.8
    assert not mask[:, :5].any()                                  # the neighbour is not kept
    out, angle = orient(img)
    assert wrap(angle + rot) == pytest.approx(0.0, abs=2.0)
    assert out.shape[0] > 2 * out.shape[1]
    assert abs(principal_angle(find_chromosome(out))[0]) < 2.0


def test_empty_image():
    z = np.zeros((30, 20), np.uint8)
    assert not find_chromosome(z).any()
    out, angle = orient(z)
    assert angle == 0.0
    assert out.shape == z.shape and not out.any()


@needs_data
def test_timing_pki3():
    files = sorted((DATA / "pki3" / "single_clase").glob("*/clase*/*.tiff"))[::100][:200]
    imgs = []
    for f in files:
        a = np.asarray(Image.open(f).convert("L")).astype(np.int16)
        a = 255 - a
        border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        imgs.append(np.clip(a - np.median(border), 0, 255).astype(np.uint8))
    t = time.perf_counter()
    angles = [orient(a)[1] for a in imgs]
    ms = (time.perf_counter() - t) / len(imgs) * 1e3
    print(f"\norient on {len(imgs)} pki3 images: {ms:.3f} ms/image, "
          f"{np.mean(np.abs(angles) >= 2):.1%} rotated")
    assert len(imgs) == 200
