"""Straightening (chromo.data.straighten): a bent chromosome resampled along its centre line."""
import numpy as np
import pytest

from chromo import config
from chromo.data.canvas import normalise
from chromo.data.straighten import bend, centre_line, straighten
from chromo.data.orient import find_chromosome

R, L, HALF = 40.0, 60.0, 4.0      # arc radius, chromosome length and half-thickness (px)
PERIOD = 12.0                     # band period along the chromosome (px)


def bands(s):
    """Intensity along the chromosome: alternating bright and pale bands."""
    return np.where(np.sin(2 * np.pi * s / PERIOD) > 0, 220, 110)


def arc_chromosome():
    """A banded chromosome bent along a circular arc (bulging to the left, upright): its arc length is L,
    its thickness 2 x HALF, its centre line leaves the chord by R (1 - cos(L / 2R)) = 10.7 px."""
    h, w = 80, 50
    cy, cx = h / 2, 12 + R                            # the circle's centre, to the right of the arc
    ys, xs = np.indices((h, w)).astype(float)
    r = np.hypot(ys - cy, xs - cx)
    theta = np.arctan2(ys - cy, xs - cx)              # pi at the arc's leftmost point
    phi = np.mod(theta, 2 * np.pi) - np.pi            # 0 at the leftmost point, -/+ towards top/bottom
    half_span = L / (2 * R)
    on = (np.abs(r - R) <= HALF) & (np.abs(phi) <= half_span)
    s = R * (half_span - phi)                          # arc length from the top end (phi < 0 is the top)
    img = np.where(on, bands(s), 0).astype(np.uint8)
    return img, s


def test_bend_of_a_hand_computed_line():
    # chord from (x 0, y 0) to (x 0, y 2); the middle point is 1 px off it
    assert bend(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.0])) == pytest.approx(1.0)
    assert bend(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.5, 1.0])) == pytest.approx(0.0)
    assert bend(np.array([0.0, 1.0]), np.array([0.0, 3.0])) == 0.0          # two points: no bend


def test_an_arc_comes_back_straight_with_its_length_and_bands():
    img, _ = arc_chromosome()
    out, b = straighten(img)
    # the arc leaves its chord by R (1 - cos(L / 2R)) = 10.7 px; the smoothed centroid line, pulled in at the
    # slanted ends, by less
    assert 6.0 < b <= R * (1 - np.cos(L / (2 * R)))
    h, w = out.shape
    assert L - 3 <= h <= L + 3                 # as long as the arc (the ends' margins are empty and cropped)
    assert 2 * HALF - 1 <= w <= 2 * HALF + 6   # the chromosome and its 2 px rim, not the bow (~19 px)
    ys, xs = centre_line(out, find_chromosome(out))
    assert bend(ys, xs) < 1.0                  # now straight
    # the bands in the same order, top to bottom: the row means follow the band pattern along the arc
    prof = out.astype(float).sum(1) / np.maximum((out > 0).sum(1), 1)
    s = np.arange(h) + (L - h) / 2
    assert np.corrcoef(prof, bands(s))[0, 1] > 0.8


def test_a_straight_or_empty_chromosome_is_left_as_it_is():
    img = np.zeros((60, 20), np.uint8)
    img[5:55, 6:14] = np.tile(bands(np.arange(50.0))[:, None], (1, 8))
    out, b = straighten(img)
    assert out is img and b < 1.0
    empty = np.zeros((30, 30), np.uint8)
    out, b = straighten(empty)
    assert out is empty and b == 0.0


def test_straighten_needs_orientation():
    img, _ = arc_chromosome()
    with pytest.raises(ValueError, match="straighten needs orient"):
        normalise(img, dark_on_light=False, straighten=True)
    with pytest.raises(config.ConfigError, match="straighten: true needs orient: true"):
        config.load("smoke", orient=False, straighten=True)


def test_normalise_with_straighten_turns_and_straightens():
    img, _ = arc_chromosome()
    turned = np.rot90(np.pad(img, 10), 1)            # the bent chromosome lying on its side
    out, angle = normalise(turned, dark_on_light=False, orient=True, straighten=True)
    assert abs(abs(angle) - 90) < 5
    assert out.shape[0] > 2 * out.shape[1]          # upright and straight: long and thin
    ys, xs = centre_line(out, find_chromosome(out))
    assert bend(ys, xs) < 1.5
