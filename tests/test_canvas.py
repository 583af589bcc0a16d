"""The canvas: square or tall ([height, width]), one global scale, and the simulated MI on a tall canvas."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from chromo import config
from chromo.data import augment
from chromo.config import canvas_hw
from chromo.data.canvas import MARGIN, canvas_text, global_scale, object_lengths, orient_canvas, place
from chromo.data.loader import mi_queries
from chromo.models import ModelConfig, build_model


def test_a_canvas_is_one_side_or_height_and_width():
    assert canvas_hw(64) == (64, 64) and canvas_hw([96, 48]) == (96, 48) and canvas_hw((96, 48)) == (96, 48)
    assert canvas_text(64) == "64 px" and canvas_text([96, 48]) == "96 x 48 px"


def test_global_scale_on_a_square_is_the_quantile_of_the_longer_side():
    sizes = np.array([[30, 10], [60, 20], [20, 40]])          # (height, width) of three objects
    # quantile 1: the largest max(h, w) = 60 fills 64 - 2 * MARGIN = 60 px
    assert global_scale(sizes, 64, 1.0) == pytest.approx(60 / 60)
    assert global_scale(sizes, 34, 1.0) == pytest.approx(30 / 60)


def test_global_scale_on_a_tall_canvas_fits_height_and_width_each():
    # canvas 96 x 48: room 92 x 44. Needs (h / 92, w / 44): (30/92, 10/44) -> 0.326; (60/92, 20/44) -> 0.652;
    # (20/92, 40/44) -> 0.909. Quantile 1 -> the largest need, 0.909: scale = 44 / 40 = 1.1
    sizes = np.array([[30, 10], [60, 20], [20, 40]])
    assert global_scale(sizes, [96, 48], 1.0) == pytest.approx(44 / 40)
    # without the wide object the tallest binds: 92 / 60
    assert global_scale(sizes[:2], [96, 48], 1.0) == pytest.approx(92 / 60)


def test_place_centres_on_a_tall_canvas_and_shrinks_what_does_not_fit():
    obj = np.full((20, 10), 200, np.uint8)
    out, clipped = place(obj, [96, 48], 2.0)                   # 40 x 20 at scale 2: fits
    assert out.shape == (96, 48) and not clipped
    ys, xs = np.nonzero(out)
    # centred: (96-40)/2, (48-20)/2
    assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (28, 68, 14, 34)
    # at scale 2, 60 px wide: more than 48 - 2 * MARGIN
    wide = np.full((10, 30), 200, np.uint8)
    out, clipped = place(wide, [96, 48], 2.0)
    assert clipped and np.nonzero(out)[1].max() + 1 - np.nonzero(out)[1].min() == 48 - 2 * MARGIN
    # a square canvas is what it was: the longer side fits 64 - 2 * MARGIN
    out, _ = place(np.full((30, 15), 200, np.uint8), 64, None)
    ys, xs = np.nonzero(out)
    assert ys.max() + 1 - ys.min() == 60 and xs.max() + 1 - xs.min() == 30


def test_object_lengths_on_a_tall_canvas():
    a = np.zeros((2, 96, 48), np.uint8)
    a[0, 10:80, 20:30] = 200                                   # 70 tall
    a[1, 40:50, 4:44] = 200                                    # 40 wide
    assert object_lengths(a, None).tolist() == [70, 40]
    assert object_lengths(a, 2.0).tolist() == [35, 20]


def test_orient_canvas_turns_a_lying_chromosome_upright_on_a_tall_canvas():
    square = np.zeros((1, 96, 96), np.uint8)
    square[0, 44:52, 18:78] = 200                               # lying: 60 wide, 8 tall
    out, angles = orient_canvas(square, [96, 48])
    assert out.shape == (1, 96, 48)
    ys, xs = np.nonzero(out[0] > 100)
    assert ys.max() - ys.min() > 50 and xs.max() - xs.min() < 12
    assert abs(abs(angles[0]) - 90) < 2


def test_mi_queries_on_a_tall_canvas_keep_its_shape_and_the_chromosome_upright():
    cfg = config.load("smoke", canvas=[96, 48], orient=True)
    imgs = np.zeros((4, 96, 48), np.uint8)
    imgs[:, 18:78, 20:28] = 200                                 # upright, 60 tall
    imgs[:, 18:78:6, 20:28] = 90
    mi = mi_queries(imgs, cfg)
    assert mi.shape == (4, 96, 48) and mi.dtype == np.uint8
    for m in mi:
        ys, xs = np.nonzero(m > 100)
        # turned back upright, not clipped by the width
        assert ys.max() - ys.min() > 2 * (xs.max() - xs.min())
    # unoriented, the tall canvas shows the middle of the simulated square
    cfg.data.orient = False
    assert mi_queries(imgs, cfg).shape == (4, 96, 48)


def test_the_simulated_blur_scales_with_the_canvas(monkeypatch):
    sigmas = []
    real = augment.ndimage.gaussian_filter
    monkeypatch.setattr(augment.ndimage, "gaussian_filter", lambda a, s: sigmas.append(s) or real(a, s))
    blur = augment._draws(0, 0)["blur"]
    for n in (64, 128):
        augment.simulate_mi(np.zeros((n, n), np.uint8), np.zeros((n, n), np.uint8), 0, 0, factors=("optics",))
    # a 64 px square keeps the drawn sigma; twice the side, twice it
    assert sigmas == [blur, 2 * blur]


@pytest.mark.parametrize("name", ["eresnet-u1c0", "alexnet", "vgg16", "resnet50"])
def test_every_model_runs_on_a_tall_canvas(name):
    net = build_model(ModelConfig(name=name, canvas=[96, 48], backbone="resnet18", adapt=True)).eval()
    with torch.no_grad():
        logits, feats = net(torch.zeros(2, 1, 96, 48))
    assert logits.shape == (2, 24) and feats.shape == (2, net.feature_dim)
    if name == "alexnet":
        assert net.avgpool.output_size == (3, 1)               # 96 // 32 rows, 48 // 32 columns


@pytest.mark.parametrize("bad, words", [([96], "one side or [height, width]"), ([96, 48.5], "whole pixels"),
                                        ([96, 8], "at least 16 a side"), ("64", "an integer or a list")])
def test_bad_canvases_are_refused_with_what_a_canvas_is(bad, words):
    with pytest.raises(config.ConfigError) as e:
        config.check_values({"data": {"canvas": bad}})
    assert "data: canvas must be" in str(e.value) and words in str(e.value)
