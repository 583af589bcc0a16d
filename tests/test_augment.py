"""Training helpers: the learning-rate schedule (exact values from its formula) and the batch
augmentations (flips as exact mirror images, seeded, both outcomes over a batch; small rotations)."""
import math

import numpy as np
import pytest
import torch

from chromo import train as train_mod
from chromo.data.augment import flip_batch, optics_batch, rotate_batch

lr_at = getattr(train_mod, "lr_at", None) or getattr(train_mod, "_lr_at")


# --- learning rate: linear warm-up over `warmup` steps, then cosine decay to zero at step `total` ---------
# base 0.1, warmup 4, total 10 (steps 0..9):
#   warm-up, step s < 4: 0.1 * (s + 1) / 4       -> 0.025, 0.05, 0.075, 0.1
#   decay, step s >= 4:  0.05 * (1 + cos(pi * (s - 4) / 6))
#     s = 4 (end of warm-up): 0.1; s = 7 (middle): 0.05; s = 9 (last): 0.05 * (1 - cos(pi / 6)) = 0.0066987
SCHEDULE = {0: 0.025, 1: 0.05, 2: 0.075, 3: 0.1, 4: 0.1, 5: 0.05 * (1 + math.cos(math.pi / 6)),
            6: 0.05 * (1 + math.cos(math.pi / 3)), 7: 0.05, 8: 0.05 * (1 - math.cos(math.pi / 3)),
            9: 0.05 * (1 - math.sqrt(3) / 2)}


def test_lr_schedule_exact_values():
    for step, want in SCHEDULE.items():
        assert lr_at(step, 10, 0.1, 4) == pytest.approx(want, rel=1e-12, abs=1e-15), step
    assert SCHEDULE[9] == pytest.approx(0.0066987, abs=1e-7)
    assert lr_at(10, 10, 0.1, 4) == pytest.approx(0.0, abs=1e-15)       # reaches zero after the last step


def test_lr_schedule_shape():
    lr = [lr_at(s, 10, 0.1, 4) for s in range(10)]
    assert lr[0] > 0                                                     # the first step already learns
    assert all(a < b for a, b in zip(lr[:4], lr[1:4]))                   # rises during the warm-up
    assert all(a > b for a, b in zip(lr[4:], lr[5:]))                    # then only falls
    assert max(lr) == pytest.approx(0.1)


def test_lr_without_warmup_and_with_one_step():
    assert lr_at(0, 10, 0.2, 0) == pytest.approx(0.2)                   # no warm-up: starts at the base rate
    assert lr_at(5, 10, 0.2, 0) == pytest.approx(0.1)                   # half-way down the cosine
    assert lr_at(0, 1, 0.3, 1) == pytest.approx(0.3)                    # warm-up of one step is the base rate


# --- flips ---------------------------------------------------------------------------------------------
def _batch(n=64, h=4, w=5):
    """[n, 1, h, w], every pixel distinct: image b is 100 b + (its row-major pixel index)."""
    return (torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w) + 100
            * torch.arange(n).reshape(n, 1, 1, 1))


def _state(orig, out):
    """'id', 'h' (left-right mirror), 'v' (up-down mirror) or 'hv' for each image of the batch; anything else
    fails."""
    states = []
    for a, b in zip(orig, out):
        match = [name for name, img in (("id", a), ("h", a.flip(-1)), ("v", a.flip(-2)),
                                        ("hv", a.flip(-1, -2)))
                 if torch.equal(img, b)]
        assert len(match) == 1, "not an exact mirror image of its input"
        states.append(match[0])
    return states


def test_horizontal_flip_is_an_exact_left_right_mirror():
    x = _batch()
    out = flip_batch(x, torch.Generator().manual_seed(0), horizontal=True, vertical=False)
    states = _state(x, out)
    assert set(states) == {"id", "h"}                                    # both outcomes occur in 64 images
    i = states.index("h")
    # the marked pixel (row 1, column 0) of a 4 x 5 image goes to row 1, column 4, the rest follows
    assert out[i, 0, 1, 4] == x[i, 0, 1, 0] and out[i, 0, 1, 0] == x[i, 0, 1, 4]
    assert out[i, 0, 0, 0] == 100 * i + 4 and out[i, 0, 3, 4] == 100 * i + 15
    assert torch.equal(x, _batch())                                      # the input is left as it was


def test_vertical_flip_is_an_exact_up_down_mirror():
    x = _batch()
    out = flip_batch(x, torch.Generator().manual_seed(0), horizontal=False, vertical=True)
    states = _state(x, out)
    assert set(states) == {"id", "v"}
    i = states.index("v")
    # row 1, column 0 of 4 rows goes to row 2, column 0
    assert out[i, 0, 2, 0] == x[i, 0, 1, 0] and out[i, 0, 0, 0] == 100 * i + 15


def test_both_flips_are_independent_and_all_four_orientations_occur():
    x = _batch()
    states = _state(x, flip_batch(x, torch.Generator().manual_seed(0), horizontal=True, vertical=True))
    counts = {s: states.count(s) for s in ("id", "h", "v", "hv")}
    assert all(c >= 5 for c in counts.values()), counts                  # about 16 each of 64
    assert flip_batch(x, torch.Generator(), horizontal=False, vertical=False).equal(x)


def test_flips_are_reproducible_from_the_generator_seed():
    x = _batch()
    runs = [_state(x, flip_batch(x, torch.Generator().manual_seed(s), True, True)) for s in (5, 5, 6)]
    assert runs[0] == runs[1]                                            # same seed, same choice
    assert runs[0] != runs[2]                                            # another seed, another choice
    flipped = sum(s != "id" for s in runs[0])
    assert 30 <= flipped <= 60                                           # about 48 of 64 changed


def test_flip_draws_advance_the_generator():
    # two batches drawn from one generator (as in an epoch) are flipped differently
    x, g = _batch(), torch.Generator().manual_seed(3)
    assert _state(x, flip_batch(x, g, True, False)) != _state(x, flip_batch(x, g, True, False))


# --- rotation ------------------------------------------------------------------------------------------
def _bar(n=48, size=33):
    """A horizontal bar through the centre of a size x size canvas, 25 px long and 1 px thick."""
    x = torch.zeros(n, 1, size, size)
    c = size // 2
    x[:, 0, c, c - 12:c + 13] = 1.0
    return x


def _moments(img):
    """(centroid row, centroid column, principal axis angle in degrees, second moment along it)."""
    a = img.double().numpy()
    yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    m = a.sum()
    cy, cx = (a * yy).sum() / m, (a * xx).sum() / m
    mu20, mu02 = (a * (xx - cx) ** 2).sum() / m, (a * (yy - cy) ** 2).sum() / m
    mu11 = (a * (xx - cx) * (yy - cy)).sum() / m
    angle = 0.5 * math.degrees(math.atan2(2 * mu11, mu20 - mu02))
    major = 0.5 * (mu20 + mu02) + math.sqrt(0.25 * (mu20 - mu02) ** 2 + mu11 ** 2)
    return cy, cx, angle, major


def test_no_rotation_returns_the_batch_unchanged():
    x = _batch()
    assert torch.equal(rotate_batch(x, 0.0, torch.Generator().manual_seed(0)), x)


def test_rotation_turns_about_the_centre_by_at_most_max_deg_both_ways():
    x, max_deg = _bar(), 20.0
    out = rotate_batch(x, max_deg, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    _, _, _, major0 = _moments(x[0, 0])
    angles = []
    for img in out[:, 0]:
        cy, cx, angle, major = _moments(img)
        assert (cy, cx) == pytest.approx((16, 16), abs=0.3)              # about the canvas centre, no shift
        # turned, not stretched (within 0.6 %)
        assert major == pytest.approx(major0, rel=0.02)
        angles.append(angle)
    angles = np.array(angles)
    assert np.abs(angles).max() <= max_deg + 1.0                         # degrees, not radians
    assert (angles > 2).any() and (angles < -2).any()                    # both directions
    assert np.abs(angles).max() > max_deg / 2                            # the full range is used
    again = rotate_batch(x, max_deg, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)                                       # seeded


# --- microscope optics (optics_batch): blur, lower resolution, noise on the object only ------------------
def _bar_batch(n: int = 8) -> torch.Tensor:
    """n canvases 32 x 32, each a bright vertical bar (rows 6..25, columns 14..17) on zero."""
    x = torch.zeros(n, 1, 32, 32)
    x[:, :, 6:26, 14:18] = 0.8
    return x


def test_optics_off_returns_the_batch_itself():
    x = _bar_batch()
    assert optics_batch(x, 0.0, torch.Generator().manual_seed(0)) is x


def test_optics_on_every_image_blurs_the_object_and_keeps_far_background_zero():
    from chromo.data.augment import OPTICS_DOWN, OPTICS_NOISE  # noqa: F401 (the documented ranges exist)

    x = _bar_batch()
    y = optics_batch(x, 1.0, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and x.eq(_bar_batch()).all()        # the input is not changed in place
    assert ((y * 255).round() == y * 255).all() and y.min() >= 0 and y.max() <= 1   # grey levels in [0, 1]
    # blur spreads the bar's edge: the column next to it (13) is no longer zero on the middle row
    assert (y[:, 0, 16, 13] > 0).all()
    # blur sigma <= 1.2 (kernel radius 4), down-sampling and a 2 px dilation: nothing beyond 8 px of the bar
    assert y[:, :, :, :6].abs().sum() == 0 and y[:, :, :, 26:].abs().sum() == 0
    # the bar's mean brightness survives (blur and resampling keep mass; noise has mean ~0)
    assert y[:, 0, 8:24, 12:20].sum(dim=(1, 2)).div(x[:, 0, 8:24,
                                                      12:20].sum(dim=(1, 2))).sub(1).abs().max() < 0.1


def test_optics_fraction_and_reproducibility():
    x = _bar_batch(400)
    y = optics_batch(x, 0.5, torch.Generator().manual_seed(3))
    changed = (y != x).flatten(1).any(1).float().mean().item()
    assert 0.4 < changed < 0.6                                   # about half the images, the others untouched
    assert torch.equal(y, optics_batch(x, 0.5, torch.Generator().manual_seed(3)))
    assert not torch.equal(y, optics_batch(x, 0.5, torch.Generator().manual_seed(4)))


def test_optics_share_of_a_global_batch_equals_the_one_process_result():
    """chromo.distributed: each process augments its share exactly as one process augments the whole batch."""
    x = _bar_batch(6) * torch.linspace(0.5, 1, 6).view(6, 1, 1, 1)
    whole = optics_batch(x, 0.5, torch.Generator().manual_seed(1))
    for rank in (0, 1):
        pos = np.arange(6)[rank::2]
        part = optics_batch(x[pos], 0.5, torch.Generator().manual_seed(1), share=(6, pos))
        assert torch.equal(part, whole[pos])


def test_optics_blur_scale_multiplies_the_drawn_sigma(monkeypatch):
    """optics_blur_scaled: sigma = U(OPTICS_BLUR) x blur_scale. With the range pinned to 0.5 px, no
    down-sampling and no noise, blur_scale 2 is a Gaussian of sigma 1 px: a single bright pixel spreads to
    exp(-1/2) of its centre at 1 px (hand-computed ratio of the separable kernel's taps)."""
    from chromo.data import augment

    monkeypatch.setattr(augment, "OPTICS_BLUR", (0.5, 0.5))
    monkeypatch.setattr(augment, "OPTICS_DOWN", (1.0, 1.0))
    monkeypatch.setattr(augment, "OPTICS_NOISE", (0.0, 0.0))
    x = torch.zeros(1, 1, 15, 15)
    x[0, 0, 7, 7] = 1.0
    wide = augment.optics_batch(x, 1.0, torch.Generator().manual_seed(0), blur_scale=2.0)
    k = augment._gauss_kernel(1.0)                                  # sigma 1: taps at 0 and 1 px
    assert abs(float(k[len(k) // 2 + 1] / k[len(k) // 2]) - math.exp(-0.5)) < 1e-6
    expect = (torch.outer(k, k) * 255).round() / 255              # the 2-D kernel, rounded to grey levels
    r = len(k) // 2
    assert torch.equal(wide[0, 0, 7 - r:8 + r, 7 - r:8 + r], expect)
    narrow = augment.optics_batch(x, 1.0, torch.Generator().manual_seed(0))   # sigma 0.5: a tighter spot
    assert narrow[0, 0, 7, 7] > wide[0, 0, 7, 7] and narrow[0, 0, 7, 9] < wide[0, 0, 7, 9]
