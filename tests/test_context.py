"""The cell-context layer (chromo.lab.context) and the pairing term of its study."""
import numpy as np
import pandas as pd
import pytest
import torch

from chromo.lab import context
from chromo.lab.context_study import choose, pair_swaps
from chromo.run import CheckpointError

KINDS = context.KINDS


def _cells(sizes=(45, 46, 47), dim=8, seed=0) -> dict:
    """A feature dict of random chromosomes in cells of the given sizes."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    return {"features": rng.normal(size=(n, dim)).astype("float32"),
            "logits": rng.normal(size=(n, 24)).astype("float32"),
            "labels": rng.integers(1, 25, n), "areas": rng.uniform(100, 900, n),
            "cells": np.repeat([f"c{i}" for i in range(len(sizes))], sizes)}


def _random_layer(kind: str, dim: int = 8) -> context.CellContext:
    """A layer whose output layer is not zero (an untrained layer is the identity, which proves nothing)."""
    torch.manual_seed(1)
    model = context.CellContext(kind, feature_dim=dim, dim=16, heads=2)
    torch.nn.init.normal_(model.out.weight)
    return model.eval()


@pytest.mark.parametrize("kind", KINDS)
def test_an_untrained_layer_is_the_identity(kind):
    f = _cells()
    np.testing.assert_array_equal(context.apply(context.CellContext(kind, feature_dim=8), f), f["logits"])


@pytest.mark.parametrize("kind", KINDS)
def test_shuffling_a_cells_chromosomes_shuffles_its_outputs(kind):
    f, model = _cells(), _random_layer(kind)
    perm = np.random.default_rng(2).permutation(len(f["cells"]))
    out = context.apply(model, f)
    shuffled = context.apply(model, {k: v[perm] for k, v in f.items()})
    assert not np.allclose(out, f["logits"])                      # the layer does something
    np.testing.assert_allclose(shuffled, out[perm], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_cells_do_not_leak_into_each_other(kind):
    """Another cell's features, logits and size (and so the padding of the batch) leave a cell's outputs."""
    f, model = _cells(), _random_layer(kind)
    g = {k: v.copy() for k, v in f.items()}
    other = g["cells"] == "c2"
    g["features"][other] += 5.0
    g["logits"][other] *= -3.0
    g["areas"][other] *= 7.0
    keep = ~other
    own = context.apply(model, f)[keep]
    np.testing.assert_allclose(context.apply(model, g)[keep], own, rtol=1e-5, atol=1e-5)
    small = {k: v[keep] for k, v in f.items()}                    # without that cell at all
    np.testing.assert_allclose(context.apply(model, small), own, rtol=1e-5, atol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    f = _cells()
    model, log = context.fit([f], "attention", epochs=2, dim=16, heads=2)
    assert len(log) == 2 and all(np.isfinite(r["loss"]) for r in log)
    assert context.load(tmp_path) is None                          # no context.pt: no layer
    path = context.save(model, tmp_path)
    assert path.name == context.FILE
    again = context.load(tmp_path)
    assert again.config == model.config
    np.testing.assert_array_equal(context.apply(again, f), context.apply(model, f))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="context.pt"):
        context.load(tmp_path)


def _relative_problem(n_cells: int, seed: int, by: str) -> dict:
    """Cells of 20 chromosomes, 10 of class 1 and 10 of class 2, whose logits say nothing (zeros). The class
    is decided only against the cell: by="features": feature 0 is the cell's offset (spread 3) + 1 for
    class 2; by="size": the area is the cell's scale (x0.3 .. x3) times 2 for class 1."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat([1, 2], 10), n_cells)
    cell = np.repeat(np.arange(n_cells), 20)
    feats = rng.normal(scale=0.1, size=(len(labels), 4))
    areas = 200 * np.exp(rng.uniform(np.log(0.3), np.log(3), n_cells))[cell] * np.where(labels == 1, 2.0, 1.0)
    if by == "features":
        feats[:, 0] += rng.normal(scale=3, size=n_cells)[cell] + (labels == 2)
        areas = np.full(len(labels), 300.0)
    return {"features": feats.astype("float32"), "logits": np.zeros((len(labels), 24), "float32"),
            "labels": labels, "areas": areas, "cells": np.char.add("c", cell.astype(str))}


@pytest.mark.parametrize("kind,by", [("attention", "features"), ("cellnorm", "features"),
                                     ("attention", "size")])
def test_the_layer_learns_a_class_decided_by_the_cell(kind, by):
    """Feature 0 (or the area) alone does not tell the class, only against the rest of the cell: the context
    layer learns it, while the same fit without context (linear, features alone) cannot."""
    train, val = _relative_problem(60, 0, by), _relative_problem(20, 1, by)
    fast = {"epochs": 40, "lr": 1e-2, "cells_per_batch": 4, "label_smoothing": 0.0, "dropout": 0.0}
    model, _ = context.fit([train], kind, dim=16, heads=2, **fast)
    acc = (context.apply(model, val).argmax(1) + 1 == val["labels"]).mean()
    assert acc > 0.95
    if by == "features":
        plain, _ = context.fit([train], "linear", **fast)
        assert (context.apply(plain, val).argmax(1) + 1 == val["labels"]).mean() < 0.8


def test_assignment_loss_is_zero_where_the_assignment_is_right_with_margin():
    """A normal cell whose logits put every chromosome on its class by 5 (more than the margin 1): the
    margin-augmented assignment is the truth, so no loss and no gradient; with the logits of two chromosomes
    exchanged, the loss is the cost the exchange saves the (wrong) assignment: positive."""
    y = torch.as_tensor([k for k in range(1, 23) for _ in (0, 1)] + [23, 24]) - 1
    logits = (5 * torch.nn.functional.one_hot(y, 24).float())[None].requires_grad_()
    pad, size = torch.zeros(1, 46, dtype=torch.bool), torch.zeros(1, 46, 24)
    loss = context.assignment_loss(logits, y[None], pad, size, margin=1.0)
    loss.backward()
    assert loss.item() == 0.0 and float(logits.grad.abs().sum()) == 0.0
    swapped = logits.detach().clone()
    swapped[0, [0, 2]] = swapped[0, [2, 0]]                       # a 1 looks like a 2 and a 2 like a 1
    assert float(context.assignment_loss(swapped, y[None], pad, size, margin=1.0)) > 0


def test_pairing_swaps_two_labels_when_the_homologues_look_alike():
    """Four chromosomes: 0 and 1 look alike, 2 and 3 too. The unary cost prefers labels [1, 2, 1, 2] by 0.1
    (cost 0.05 for chromosome 1 in class 1 and chromosome 2 in class 2). Re-pairing to [1, 1, 2, 2] joins
    the look-alikes: a pair distance (1 - cos) of about 2 for each of the two classes saved, so any weight
    above 0.1 / 4 swaps and a smaller one keeps the assignment's labels."""
    feats = np.array([[1, 0], [1, 0.01], [0, 1], [0.01, 1]], float)
    cost = np.full((4, 24), 9.0)
    cost[[0, 1, 2, 3], [0, 1, 0, 1]] = 0.0
    cost[1, 0] = cost[2, 1] = 0.05
    labels = np.array([1, 2, 1, 2])
    np.testing.assert_array_equal(pair_swaps(cost, labels, feats, weight=1.0), [1, 1, 2, 2])
    np.testing.assert_array_equal(pair_swaps(cost, labels, feats, weight=0.01), labels)


def test_a_layer_is_adopted_only_where_every_seed_beats_the_assignment():
    """The best (training, variant) by wrong chromosomes summed over queries; off where any seed of its spread
    has as many wrong as the assignment without context (10 here)."""
    table = pd.DataFrame({"training": ["t"] * 4, "variant": ["a", "a", "b", "b"], "query": ["ki", "mi"] * 2,
                          "wrong": [4, 5, 3, 4]})
    spread = lambda wrong: pd.DataFrame({"seed": [0, 0, 1, 1], "query": ["ki", "mi"] * 2,  # noqa: E731
                                         "blend": 1.0, "wrong": wrong})
    assert choose(table, spread([3, 4, 4, 4]), 10) == ("t", "b")
    assert choose(table, spread([3, 4, 5, 5]), 10) is None
