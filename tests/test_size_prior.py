"""The karyotype assignment's relative-size prior (beyond the paper): hand-computed examples, the assignment
it changes, where it is stored, and bad input."""
import json

import numpy as np
import pytest

from chromo import config, karyotype
from chromo.classify import Classifier, read_cell
from chromo.data.canvas import object_areas
from chromo.data.synthetic import write_cell
from chromo.cell import size_costs
from chromo.evaluate import (MI_ABLATION, dcnn_and_assignment, mi_ablation, predictions_from, select,
                             size_prior_sweep)
from chromo.inference import extract_features, predict
from chromo.run import CheckpointError, Run
from tests.test_classify import run, synthetic_manifest  # noqa: F401 (module fixtures)

NORMAL = karyotype.normal_labels("XY")


def test_relative_size_by_hand():
    """log(area / median of its cell), each cell on its own: cell a (100, 200, 400) has median 200."""
    rel = karyotype.relative_size([100, 200, 400, 50, 50], ["a", "a", "a", "b", "b"])
    np.testing.assert_allclose(rel, [np.log(0.5), 0.0, np.log(2.0), 0.0, 0.0])


def test_object_areas_count_the_pixels_above_the_threshold():
    imgs = np.zeros((2, 4, 4), np.uint8)
    imgs[0, :2, :3] = 200          # 6 pixels
    imgs[1, 0, 0], imgs[1, 1, 1] = 12, 13                  # 12 is not above the threshold
    np.testing.assert_array_equal(object_areas(imgs), [6.0, 1.0])


def test_fit_size_model_and_size_cost_by_hand():
    """Class k's mean and (population) sd of r; the cost weight * (0.5 z^2 + log sd)."""
    labels = np.repeat(np.arange(1, 25), 2)                      # two chromosomes per class
    rel = np.repeat(np.linspace(1, -1, 24), 2) + np.tile([-0.1, 0.1], 24)
    m = karyotype.fit_size_model(rel, labels)
    np.testing.assert_allclose(m["mean"], np.linspace(1, -1, 24))
    np.testing.assert_allclose(m["sd"], 0.1)
    c = karyotype.size_cost([1.2], m, 0.5)                       # z = 2 for class 1
    assert c.shape == (1, 24)
    assert c[0, 0] == pytest.approx(0.5 * (0.5 * 4 + np.log(0.1)))
    assert (karyotype.size_cost([1.2], m, 0.0) == 0).all()


def test_size_prior_settles_what_the_softmax_cannot():
    """A 21 and a 22 whose softmax leans the wrong way (cost 0.1 for the true class, 0 for the other): on
    -log p alone the assignment swaps them (saving 0.2); their sizes (21s at r = 0.5, 22s at -0.5, the model's
    means, sd 1, weight 1) add 0.5 to each wrong slot, so the prior puts both right (0.2 < 1.0)."""
    labels = np.array(NORMAL)
    j, k = np.flatnonzero(labels == 21)[0], np.flatnonzero(labels == 22)[0]
    cost = np.full((46, 24), 10.0)
    cost[np.arange(46), labels - 1] = 0.0
    cost[j, 20], cost[j, 21] = 0.1, 0.0                 # the 21 leans to 22
    cost[k, 21], cost[k, 20] = 0.1, 0.0                 # the 22 leans to 21
    model = {"mean": [0.0] * 20 + [0.5, -0.5, 0.0, 0.0], "sd": [1.0] * 24}
    rel = np.where(labels == 21, 0.5, np.where(labels == 22, -0.5, 0.0))
    plain = karyotype.assign_karyotype(cost)["labels"]
    assert plain[j] == 22 and plain[k] == 21 and (plain != labels).sum() == 2
    sized = karyotype.assign_karyotype(cost + karyotype.size_cost(rel, model, 1.0))["labels"]
    assert (sized == labels).all()


def test_relative_size_refuses_bad_input():
    with pytest.raises(ValueError, match="area 0"):
        karyotype.relative_size([10, 0], ["a", "a"])
    with pytest.raises(ValueError, match="3 areas for 2 cell names"):
        karyotype.relative_size([1, 2, 3], ["a", "a"])
    with pytest.raises(ValueError, match=r"classes \[24\]"):
        karyotype.fit_size_model(np.zeros(46), np.array(NORMAL[:-1] + [23]))   # no Y


def test_size_costs_needs_areas_only_when_the_prior_is_on():
    f = {"cells": np.array(["a", "a"]), "logits": np.zeros((2, 24))}
    prior = {"weight": 0.25, "mean": [0.0] * 24, "sd": [1.0] * 24}
    assert size_costs(f, None) is None and size_costs(f, {**prior, "weight": 0.0}) is None
    with pytest.raises(CheckpointError, match="runs/x.*no chromosome areas.*chromo features"):
        size_costs(f, prior, "runs/x")
    c = size_costs({**f, "areas": np.array([1.0, 1.0])}, prior)
    np.testing.assert_allclose(c, 0.0)                       # r = 0 = every mean, sd 1: 0.5 * 0 + log 1
    # area 0 (nothing above the threshold, or shrunk to fit in classify): no size cost, out of the median
    g = {"cells": np.array(["a"] * 4), "areas": np.array([0.0, 100.0, 100.0, 400.0])}
    c = size_costs(g, {**prior, "mean": [np.log(4.0)] * 24, "weight": 1.0})
    np.testing.assert_allclose(c[0], 0.0)
    # median 100 (the zero left out): r = log 4 = mean
    np.testing.assert_allclose(c[3], 0.0)
    np.testing.assert_allclose(c[1], 0.5 * np.log(4.0) ** 2)
    with pytest.raises(CheckpointError, match="without its model"):
        size_costs(g, {"weight": 0.5})


def test_run_size_prior_bad_files(tmp_path):
    r = Run(tmp_path)
    assert r.size_prior() is None
    (tmp_path / Run.SIZE_PRIOR).write_text("{not json")
    with pytest.raises(CheckpointError, match="size_prior.json: unreadable size prior"):
        r.size_prior()
    for bad in ({"weight": 0.25, "mean": [0.0] * 23, "sd": [1.0] * 24}, {"weight": 0.25, "mean": [0.0] * 24,
                "sd": [0.0] * 24}, {"weight": 0.25}, {"weight": -1}):
        (tmp_path / Run.SIZE_PRIOR).write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match="size_prior.json: unreadable size prior"):
            r.size_prior()
    (tmp_path / Run.SIZE_PRIOR).write_text(json.dumps({"weight": 0.0, "fitted_on": "not fitted"}))
    assert r.size_prior()["weight"] == 0.0                   # off: no model needed


@pytest.mark.parametrize("bad", [{"nowhere": 0.2}, {"pki3": -1}, {"pki3": "high"}, [0.25]])
def test_config_refuses_a_bad_size_prior(bad):
    with pytest.raises(config.ConfigError) as e:
        config.load("smoke", size_prior=bad)
    assert str(e.value).startswith("keyword arguments, matching: size_prior must be a mapping")
    if isinstance(bad, dict):
        assert "of data sets to weights >= 0" in str(e.value) and f"not {bad!r}" in str(e.value)


def test_size_prior_is_a_matching_setting_not_a_training_one():
    a, b = config.load("smoke"), config.load("smoke", size_prior={"pki3": 1.0})
    assert a.run_digest("pki3", "eresnet-u1c0") == b.run_digest("pki3", "eresnet-u1c0")
    assert b.size_prior_for("pki3") == 1.0 and b.size_prior_for("bioimlab") == 0.0


def test_features_carry_areas_and_the_run_its_prior(run):  # noqa: F811
    """extract_features stores each chromosome's area and the run's size_prior.json (weight as given, or the
    one the run has); the sweep scores weight 0 exactly as the plain assignment."""
    path = Run(run).path / Run.SIZE_PRIOR
    before = path.read_text()
    try:
        extract_features(run, "val", progress=False, size_prior=0.5)
        prior = Run(run).size_prior()
        assert prior["weight"] == 0.5 and len(prior["mean"]) == 24 and "training split" in prior["fitted_on"]
        f = Run(run).features("val", "ki")
        assert f["areas"].shape == f["labels"].shape and (f["areas"] > 0).all()
        extract_features(run, "val", progress=False)           # no weight given: the run's stays
        assert Run(run).size_prior()["weight"] == 0.5
        sweep = size_prior_sweep(run, (0.0, 0.5), split="val")
        assert set(sweep["query"]) == {"ki", "mi"} and len(sweep) == 4
        off = sweep[(sweep["query"] == "ki") & (sweep["weight"] == 0.0)]["accuracy"].iloc[0]
        assert off == dcnn_and_assignment(f["logits"], f["labels"], f["cells"])["assign"]   # weight 0: plain
        path.write_text("{broken")                              # an unreadable file is written anew
        extract_features(run, "val", progress=False)
        assert Run(run).size_prior()["weight"] == 0.0           # the run's config's: synthetic is not named
        with pytest.raises(ValueError, match="a number >= 0"):
            extract_features(run, "val", progress=False, size_prior=-1.0)
    finally:
        path.write_text(before)


def test_mi_ablation_scores_with_the_runs_prior_or_without_it(run):  # noqa: F811
    """evaluate.mi_ablation: each factor set once; prior=False is the assignment on -log p alone (the
    experiments table's), and the prior never changes the DCNN column."""
    path = Run(run).path / Run.SIZE_PRIOR
    before = path.read_text()
    try:
        extract_features(run, "val", progress=False, size_prior=20.0)
        on, off = mi_ablation(run, split="val"), mi_ablation(run, split="val", prior=False)
        assert list(on.index) == list(MI_ABLATION) == list(off.index)
        assert on["DCNN"].tolist() == off["DCNN"].tolist()              # an argmax: the prior never enters
        assert on["assignment"].tolist() != off["assignment"].tolist()  # at weight 20 the prior decides
        f = Run(run).features("val", "ki")
        plain = dcnn_and_assignment(f["logits"], f["labels"], f["cells"])
        assert off.loc["none (KI)", "DCNN"] == pytest.approx(plain["dcnn"])
        assert off.loc["none (KI)", "assignment"] == pytest.approx(plain["assign"])
        mi = Run(run).features("val", "mi")
        assert off.iloc[-1]["DCNN"] == pytest.approx(dcnn_and_assignment(mi["logits"], mi["labels"],
                                                                         mi["cells"])["dcnn"])
    finally:
        path.write_text(before)


def test_classify_and_the_evaluation_agree_with_the_prior_on(run, synthetic_manifest, tmp_path):  # noqa: F811
    """With a run whose size prior is on (a weight large enough to move labels), `chromo classify` and
    evaluate.predictions_from give one answer; DCNN never sees the prior."""
    path = Run(run).path / Run.SIZE_PRIOR
    before = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(before), "weight": 20.0}))
        cell = synthetic_manifest[synthetic_manifest["cell_formula"] == "46,XX"]["cell"].iloc[0]
        files = sorted(write_cell(synthetic_manifest, cell, tmp_path / "c"))
        clf = Classifier(run)
        assert clf.size_prior["weight"] == 20.0
        table, report, _ = clf.classify(files)
        imgs = clf.objects(read_cell(files)[0])[0]
        logits, features = predict(clf.net, imgs, clf.cfg)
        n, m = len(files), clf.cfg.matching
        t = {"features": features, "logits": logits, "labels": np.ones(n, int), "cells": np.array([cell] * n),
             "paths": np.array([str(f) for f in files]), "areas": object_areas(imgs)}
        pred = predictions_from(Run(run).features("val", "ki"), {"ki": t}, "ki", m.gamma, m.beta,
                                (m.distance,), m.extra_penalty, m.missing_penalty, clf.size_prior)
        assert [str(k) for k in select(pred, "assign")["pred"]] == \
            [str({"X": 23, "Y": 24}.get(p, p)) for p in table["predicted"]]
        plain = predictions_from(Run(run).features("val", "ki"), {"ki": t}, "ki", m.gamma, m.beta,
                                 (m.distance,), m.extra_penalty, m.missing_penalty)
        assert (select(plain, "dcnn")["pred"].to_numpy() == select(pred, "dcnn")["pred"].to_numpy()).all()
        # a weight this large moves labels: classify would disagree if it ignored the prior
        assert (select(plain, "assign")["pred"].to_numpy() != select(pred, "assign")["pred"].to_numpy()).any()
    finally:
        path.write_text(before)
