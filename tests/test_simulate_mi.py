"""Simulated microscope images (chromo.data.augment.simulate_mi): determinism, the factor switches, and what
each factor does to a synthetic banded bar."""
from __future__ import annotations

import numpy as np
import pytest

from chromo.data import augment
from chromo.data.augment import FACTORS, _draws, simulate_mi, simulate_mi_set

N = 64
BAND = int(0.20 * N)  # the neighbour band is at most floor(0.20 * side) deep


def bar(length: int = 40, width: int = 10, n: int = N) -> np.ndarray:
    """An upright bright bar with dark bands, centred on an n x n zero canvas (a toy KI chromosome)."""
    a = np.zeros((n, n), np.uint8)
    y0, x0 = (n - length) // 2, (n - width) // 2
    a[y0:y0 + length, x0:x0 + width] = 200
    a[y0:y0 + length:6, x0:x0 + width] = 90
    return a


Q, NB = bar(), bar(30, 8)


def axis(img: np.ndarray) -> np.ndarray:
    """Unit principal axis (x, y) of the brightness distribution, y pointing down."""
    y, x = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    w = img.astype(float) / img.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    cxx, cyy, cxy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum(), (w * (x - mx) * (y - my)).sum()
    vals, vecs = np.linalg.eigh([[cxx, cxy], [cxy, cyy]])
    return vecs[:, np.argmax(vals)]


def border_depth(mask: np.ndarray, side: int) -> int:
    """How deep the True pixels reach from one side (0 top, 1 left, 2 bottom, 3 right); 0 if none."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return 0
    n = mask.shape[0]
    return int([ys.max() + 1, xs.max() + 1, n - ys.min(), n - xs.min()][side])


# --- determinism and switches ---------------------------------------------------------------------
def test_deterministic_per_seed_and_index():
    a, b = simulate_mi(Q, NB, 3, 5), simulate_mi(Q, NB, 3, 5)
    assert a.dtype == np.uint8 and a.shape == Q.shape
    assert (a == b).all()
    assert not (simulate_mi(Q, NB, 3, 6) == a).all()
    assert not (simulate_mi(Q, NB, 4, 5) == a).all()
    assert _draws(3, 5) == _draws(3, 5) and _draws(3, 5) != _draws(3, 6)


def test_draws_are_in_the_documented_ranges():
    d = [_draws(5, i) for i in range(500)]
    ranges = {"angle": (0, 360), "bend": (-0.12, 0.12), "nb_tilt": (-60, 60), "nb_depth": (0.08, 0.20),
              "nb_pos": (0.15, 0.85), "nb_gain": (0.6, 1.0), "blur": (0.4, 1.0), "down": (0.55, 0.85)}
    for k, (lo, hi) in ranges.items():
        v = np.array([x[k] for x in d])
        assert lo <= v.min() and v.max() <= hi and v.max() - v.min() > 0.9 * (hi - lo), k
    assert {x["nb_side"] for x in d} == {0, 1, 2, 3} and {x["nb_end"] for x in d} == {0, 1}


def test_no_factors_is_the_identity():
    out = simulate_mi(Q, NB, 0, 0, factors=())
    assert out.dtype == np.uint8 and (out == Q).all() and out is not Q
    imgs = np.stack([Q, NB])
    assert (simulate_mi_set(imgs, 0, factors=()) == imgs).all()


def test_unknown_factor_is_named():
    with pytest.raises(ValueError, match="warp"):
        simulate_mi(Q, NB, 0, 0, factors=("rotate", "warp"))
    with pytest.raises(ValueError, match="blurr"):
        simulate_mi_set(np.stack([Q, NB]), 0, factors=("blurr",))


def test_every_factor_set_gives_uint8_of_the_same_shape():
    for k in range(len(FACTORS) + 1):
        out = simulate_mi(Q, NB, 1, 2, factors=FACTORS[:k])
        assert out.dtype == np.uint8 and out.shape == Q.shape


# --- the factors one by one -----------------------------------------------------------------------
def test_rotate_only_turns_the_bar_by_the_drawn_angle_and_keeps_its_brightness():
    tilted = 0
    for i in range(20):
        out = simulate_mi(Q, NB, 0, i, factors=("rotate",))
        t = np.deg2rad(_draws(0, i)["angle"])
        # counter-clockwise as displayed (y down): the upright axis (0, 1) goes to (sin t, cos t)
        assert abs(axis(out) @ [np.sin(t), np.cos(t)]) > np.cos(np.deg2rad(2))
        assert abs(int(out.sum()) / int(Q.sum()) - 1) < 0.02
        tilted += abs(axis(out)[1]) < 0.9
    assert tilted > 0


def test_rotate_uses_the_draws(monkeypatch):
    p = dict(_draws(0, 0), angle=90.0)
    monkeypatch.setattr(augment, "_draws", lambda seed, index: p)
    assert (simulate_mi(Q, NB, 0, 0, factors=("rotate",)) == np.rot90(Q)).all()


def test_bend_shifts_the_ends_sideways_by_the_drawn_amount(monkeypatch):
    p = dict(_draws(0, 0), angle=0.0, bend=0.12)
    monkeypatch.setattr(augment, "_draws", lambda seed, index: p)
    out = simulate_mi(Q, NB, 0, 0, factors=("bend",))
    y = 13  # a bright row near the top end of the bar
    cy = (N - 1) / 2
    expected = 0.12 * N * ((y - cy) / (N / 2)) ** 2
    x = np.arange(N)
    shift = (out[y] * x).sum() / out[y].sum() - (Q[y] * x).sum() / Q[y].sum()
    assert shift == pytest.approx(expected, abs=0.1)
    # with no bend drawn, "bend" changes nothing
    p["bend"] = 0.0
    assert (simulate_mi(Q, NB, 0, 0, factors=("bend",)) == Q).all()


def test_neighbour_only_enters_a_border_band_and_never_the_centre():
    for i in range(40):
        out = simulate_mi(Q, NB, 0, i, factors=("neighbour",))
        changed = out != Q
        side = _draws(0, i)["nb_side"]
        assert changed.any()
        assert border_depth(changed, side) <= BAND
        assert changed.sum() <= 0.20 * N * N
        centre = np.s_[N // 2 - 1:N // 2 + 1, N // 2 - 1:N // 2 + 1]
        assert (out[centre] == Q[centre]).all()
        # the piece reaches the canvas edge (it enters from outside), and at most half of the neighbour is in
        edge = [changed[0], changed[:, 0], changed[-1], changed[:, -1]][side]
        assert edge.any()
        assert (out.astype(int) - Q).clip(0).sum() <= 0.5 * NB.sum() * 1.1


def test_a_short_neighbour_enters_at_most_half():
    short = bar(12, 6)
    for i in range(40):
        out = simulate_mi(Q, short, 0, i, factors=("neighbour",))
        changed = out != Q
        assert [changed[0], changed[:, 0], changed[-1], changed[:, -1]][_draws(0, i)["nb_side"]].any()
        assert (out.astype(int) - Q).clip(0).sum() <= 0.55 * short.sum()


def test_optics_blur_and_noise_keep_the_bar_recognisable():
    out = simulate_mi(Q, NB, 0, 0, factors=("optics",))
    assert not (out == Q).all()
    inside = Q > 0
    assert abs(out[inside].mean() / Q[inside].mean() - 1) < 0.15
    assert out[:8, :8].mean() < 10  # background stays dark: only noise


# --- ablation nesting -----------------------------------------------------------------------------
def test_draws_do_not_depend_on_the_factor_set(monkeypatch):
    calls = []
    real = augment._draws
    monkeypatch.setattr(augment, "_draws", lambda seed, index: calls.append((seed, index))
                        or real(seed, index))
    for k in range(1, len(FACTORS) + 1):
        simulate_mi(Q, NB, 7, 11, factors=FACTORS[:k])
    assert calls == [(7, 11)] * len(FACTORS)


def test_adding_a_factor_changes_only_its_own_part():
    for i in range(10):
        r = simulate_mi(Q, NB, 0, i, factors=("rotate",))
        rb = simulate_mi(Q, NB, 0, i, factors=("rotate", "bend"))
        rbn = simulate_mi(Q, NB, 0, i, factors=("rotate", "bend", "neighbour"))
        side = _draws(0, i)["nb_side"]
        # same rotation with and without bend: the principal axes agree to a few degrees
        assert abs(axis(r) @ axis(rb)) > np.cos(np.deg2rad(5))
        # the neighbour adds pixels only in its band; elsewhere the image is exactly the same
        assert border_depth(rbn != rb, side) <= BAND
        assert (rbn >= rb).all()
        # the neighbour piece is the same one whatever came before
        n_only = simulate_mi(Q, NB, 0, i, factors=("neighbour",))
        piece = n_only != Q
        assert ((rbn == np.maximum(rb, n_only)) | ~piece).all()


# --- the set --------------------------------------------------------------------------------------
def test_set_is_per_image_simulate_mi_with_a_drawn_neighbour():
    imgs = np.stack([bar(20 + 4 * k, 6 + k % 4) for k in range(5)])
    out = simulate_mi_set(imgs, 9)
    assert out.dtype == np.uint8 and out.shape == imgs.shape
    assert (out == simulate_mi_set(imgs, 9)).all()
    for i in range(5):
        j = int(np.random.default_rng([9, i, 1]).integers(5))
        assert (out[i] == simulate_mi(imgs[i], imgs[j if j != i else (i + 1) % 5], 9, i)).all()
