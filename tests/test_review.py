"""Which chromosomes a person should check: the assignment's min-marginals against brute force, the
calibration of a score on a case whose true probability is known, and the review measures on hand-made
cells; bad input."""
import json

import numpy as np
import pytest

from chromo import X, Y, karyotype, review

PENALTIES = [(4.0, 4.0), (0.5, 0.5), (1.0, 2.0), (0.5, 8.0), (8.0, 0.5)]


def brute_force(cost, extra_penalty, missing_penalty):
    """Every labelling of the chromosomes over 1..24 [24^n, n] and its cost, the cheaper of XX and XY: the
    per-chromosome costs, extra_penalty per chromosome beyond a class's normal copies (at most one extra per
    class), missing_penalty per normal copy absent. Infinite costs count 1e6, as in assign_karyotype."""
    c = np.where(np.isfinite(cost), cost, 1e6)
    n = len(c)
    labellings = np.indices((24,) * n).reshape(n, -1).T + 1
    base = c[np.arange(n), labellings - 1].sum(1)
    copies = np.zeros((len(labellings), 24))
    for i in range(n):
        copies[np.arange(len(labellings)), labellings[:, i] - 1] += 1
    best = np.full(len(labellings), np.inf)
    for x, y in ((2, 0), (1, 1)):                                     # XX, XY
        normal = np.full(24, 2.0)
        normal[X - 1], normal[Y - 1] = x, y
        total = (base + extra_penalty * np.maximum(copies - normal, 0).sum(1)
                 + missing_penalty * np.maximum(normal - copies, 0).sum(1))
        best = np.minimum(best, np.where((copies <= normal + 1).all(1), total, np.inf))
    return labellings, best


def check_against_brute_force(cost, extra_penalty, missing_penalty):
    m = karyotype.assignment_margins(cost, extra_penalty, missing_penalty)
    a = karyotype.assign_karyotype(cost, extra_penalty, missing_penalty)
    np.testing.assert_array_equal(m["labels"], a["labels"])
    assert (m["formula"], m["hypothesis"]) == (a["formula"], a["hypothesis"])
    labellings, total = brute_force(cost, extra_penalty, missing_penalty)
    optimum = total.min()
    assert a["cost"] == pytest.approx(optimum, abs=1e-6)
    assert total[(labellings == m["labels"]).all(1)][0] == pytest.approx(optimum, abs=1e-6)
    for i, k in enumerate(m["labels"]):
        assert m["margin"][i] == pytest.approx(total[labellings[:, i] != k].min() - optimum, abs=1e-6)
        assert m["runner_up"][i] != k
        with_runner_up = total[labellings[:, i] == m["runner_up"][i]].min()
        assert with_runner_up == pytest.approx(optimum + m["margin"][i], abs=1e-6)
    return m


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("extra_penalty, missing_penalty", PENALTIES)
def test_margins_equal_brute_force(n, seed, extra_penalty, missing_penalty):
    """Random costs, cheap on two of 21, X and Y so that chromosomes compete for few slots: extra slots and
    both sex hypotheses occur; some costs infinite (1e6 in both)."""
    rng = np.random.default_rng(seed)
    cost = rng.uniform(2, 8, (n, 24))
    cheap = rng.choice([21, X, Y], size=2, replace=False)
    cost[:, cheap - 1] = rng.uniform(0, 1, (n, 2))
    cost[rng.random((n, 24)) < 0.2] = np.inf
    m = check_against_brute_force(cost, extra_penalty, missing_penalty)
    assert (m["margin"] >= 0).all() and np.isfinite(m["margin"]).all()


def test_margins_with_three_chromosomes_taken_for_y():
    """Y has no normal slot in XX and one in XY, one extra in both: two of three Y-like chromosomes fit."""
    cost = np.full((3, 24), 3.0)
    cost[:, Y - 1] = [0.0, 0.1, 0.2]
    m = check_against_brute_force(cost, 1.0, 1.0)
    assert m["hypothesis"] == "XY" and list(m["labels"]).count(Y) == 2


def test_margins_with_ties():
    """Chromosome 0 is as cheap as 1 or 2 (margin 0, the other label the runner-up); three chromosomes alike
    want class 5, which has two normal slots."""
    cost = np.full((2, 24), 5.0)
    cost[0, [0, 1]] = 1.0
    cost[1, 6] = 0.5
    m = check_against_brute_force(cost, 4.0, 4.0)
    assert m["margin"][0] == 0
    assert {m["labels"][0], m["runner_up"][0]} == {1, 2}
    alike = np.full((3, 24), 3.0)
    alike[:, 4] = 0.0
    m = check_against_brute_force(alike, 1.5, 1.0)
    assert list(m["labels"]).count(5) == 3          # the third in 5's extra slot: +1.5 < 3 - 1 elsewhere


def test_margins_of_an_infinite_cost_are_not_a_forbidden_label():
    """Chromosome 0 can only be a 1 (every other cost +inf, 1e6 in the assignment): forbidding 1 costs about
    1e6, finite, where a forbidden slot would make it infeasible."""
    cost = np.full((2, 24), np.inf)
    cost[0, 0], cost[1] = 0.0, 2.0
    m = check_against_brute_force(cost, 4.0, 4.0)
    assert 1e6 - 10 < m["margin"][0] < 1e6 + 10


def test_margins_of_a_swapped_pair_in_a_full_cell():
    """A 46,XY cell whose 21 and 22 lean to each other's class (0.1 for the true class, 0 for the other):
    the assignment swaps them; forbidding either the swap costs 0.2, the runner-up the true class; every
    other chromosome (cost 0 right, 10 elsewhere) has a large margin."""
    labels = np.array(karyotype.normal_labels("XY"))
    j, k = np.flatnonzero(labels == 21)[0], np.flatnonzero(labels == 22)[0]
    cost = np.full((46, 24), 10.0)
    cost[np.arange(46), labels - 1] = 0.0
    cost[j, 20], cost[j, 21] = 0.1, 0.0
    cost[k, 21], cost[k, 20] = 0.1, 0.0
    m = karyotype.assignment_margins(cost)
    np.testing.assert_array_equal(m["labels"], karyotype.assign_karyotype(cost)["labels"])
    assert (m["labels"][j], m["labels"][k]) == (22, 21)
    assert m["margin"][[j, k]] == pytest.approx([0.2, 0.2])
    assert (m["runner_up"][j], m["runner_up"][k]) == (21, 22)
    others = np.setdiff1d(np.arange(46), [j, k])
    assert (m["margin"][others] > 1).all()


# --- calibration ---------------------------------------------------------------------------------------

def draws(n, p_of_score, seed):
    rng = np.random.default_rng(seed)
    score = rng.exponential(2.0, n)
    return score, rng.random(n) < p_of_score(score)


@pytest.mark.parametrize("method", ["isotonic", "logistic"])
def test_calibration_recovers_a_known_probability(method):
    """p(right | score) = sigmoid(-1 + 2 log1p(score)), a form both methods can follow: fitted on 20000
    draws, the calibrated probability is within 0.04 of the truth and the ECE of fresh draws is small."""
    def truth(s):
        return 1 / (1 + np.exp(1 - 2 * np.log1p(s)))
    score, correct = draws(20000, truth, 0)
    model = review.fit_calibration(score, correct, method)
    model = json.loads(json.dumps(model))                         # a run directory stores it as JSON
    grid = np.linspace(0.1, 6, 50)
    assert np.abs(review.calibrate(grid, model) - truth(grid)).max() < 0.04
    fresh, right = draws(20000, truth, 1)
    p = review.calibrate(fresh, model)
    assert review.expected_calibration_error(p, right) < 0.02
    assert review.expected_calibration_error(np.full(len(right), 0.99), right) > 0.1   # uncalibrated


def test_isotonic_calibration_is_increasing_and_never_certain():
    score, correct = draws(5000, lambda s: 1 - 0.5 * np.exp(-s), 2)
    model = review.fit_calibration(score, correct)
    p = review.calibrate(np.linspace(-1, 100, 500), model)
    assert (np.diff(p) >= 0).all()
    assert 0 < p.min() and p.max() < 1


def test_ece_and_reliability_by_hand():
    """Two bins: [0, 0.5) holds 0.1 (wrong), 0.2 (right): mean 0.15, accuracy 0.5; [0.5, 1] holds 0.9 and
    1.0 (both right): mean 0.95, accuracy 1. ECE = 2/4 * 0.35 + 2/4 * 0.05 = 0.2."""
    conf, correct = [0.1, 0.2, 0.9, 1.0], [0, 1, 1, 1]
    assert review.expected_calibration_error(conf, correct, bins=2) == pytest.approx(0.2)
    t = review.reliability(conf, correct, bins=2)
    assert list(t.columns) == ["bin", "low", "high", "confidence", "accuracy", "count"]
    np.testing.assert_allclose(t["confidence"], [0.15, 0.95])
    np.testing.assert_allclose(t["accuracy"], [0.5, 1.0])
    assert list(t["count"]) == [2, 2]
    t = review.reliability(conf, correct, bins=4)                 # bins [0.25, 0.5) and [0.5, 0.75) empty
    assert list(t["count"]) == [2, 0, 0, 2] and t["accuracy"].isna().sum() == 2


# --- review: two hand-made cells -----------------------------------------------------------------------
# cell a: true 1 1 2 2, the assignment swaps the middle pair; cell b: true 3 3 4, the middle one taken for 4.
# Queues (least confident first): a: 1, 2, 3, 0; b: 4, 5, 6 (4 is right).

CELLS = np.array(["a"] * 4 + ["b"] * 3)
LABELS = np.array([1, 1, 2, 2, 3, 3, 4])
PRED = np.array([1, 2, 1, 2, 3, 4, 4])
CONF = np.array([0.9, 0.1, 0.5, 0.8, 0.2, 0.3, 0.95])


def hand_cost():
    """Costs whose assignment is PRED: 0 for the predicted class, 0.1 / 1.0 for the leaning ones."""
    cost = np.full((7, 24), 10.0)
    cost[np.arange(7), PRED - 1] = 0.0
    cost[1, [0, 1]] = 1.0, 0.1                  # a true 1 leaning to 2
    cost[2, [0, 1]] = 0.1, 1.0                  # a true 2 leaning to 1
    cost[5, [2, 3]] = 1.0, 0.1                  # a true 3 leaning to 4
    return cost


def test_hand_cost_gives_the_hand_prediction():
    cost = hand_cost()
    for c in "ab":
        got = karyotype.assign_karyotype(cost[CELLS == c])["labels"]
        np.testing.assert_array_equal(got, PRED[CELLS == c])


def test_review_queue_breaks_ties_by_position():
    np.testing.assert_array_equal(review.review_queue([0.5, 0.2, 0.5, 0.2]), [1, 3, 0, 2])


def test_review_curve_by_hand():
    """k = 0: 4/7 right, cells 2/4 and 2/3; k = 1: a's 1 corrected (3/4), b's first is right (2/3);
    k = 2: all right. Reassigned, k = 1: fixing a's 1 sends its partner back to 2, so a is all right."""
    t = review.review_curve(CONF, PRED, LABELS, CELLS, ks=range(4), cost=hand_cost()).set_index(
        ["reassign", "k"])
    plain = t.loc[False]
    np.testing.assert_allclose(plain["accuracy"], [4 / 7, 5 / 7, 1, 1])
    np.testing.assert_allclose(plain["cell_accuracy"], [(1 / 2 + 2 / 3) / 2, (3 / 4 + 2 / 3) / 2, 1, 1])
    np.testing.assert_allclose(plain["cells_right"], [0, 0, 1, 1])
    np.testing.assert_allclose(plain["checked"], [0, 1, 2, 3])
    again = t.loc[True]
    np.testing.assert_allclose(again["accuracy"], [4 / 7, 6 / 7, 1, 1])
    np.testing.assert_allclose(again["cell_accuracy"], [(1 / 2 + 2 / 3) / 2, (1 + 2 / 3) / 2, 1, 1])
    np.testing.assert_allclose(again["cells_right"], [0, 0.5, 1, 1])
    plain_only = review.review_curve(CONF, PRED, LABELS, CELLS, ks=[0, 9])
    assert list(plain_only["reassign"]) == [False, False] and list(plain_only["checked"]) == [0, 3.5]
    assert plain_only["accuracy"].iloc[1] == 1                      # k above a cell's size: all checked


def test_reviewed_fixes_a_label_even_beyond_the_slots():
    """Three true 5s corrected in a cell whose assignment cannot hold more than three: all take 5."""
    cost = np.zeros((4, 24))
    got = review.reviewed([0, 0, 0, 1], [1, 1, 1, 1], [5, 5, 5, 5], ["c"] * 4, 4, cost)
    np.testing.assert_array_equal(got, [5, 5, 5, 5])


def test_k_needed_by_hand():
    r = review.k_needed(CONF, PRED, LABELS, CELLS, target=1.0)
    assert r["per_cell"].to_dict() == {"a": 2, "b": 2} and r["k"] == 2
    r = review.k_needed(CONF, PRED, LABELS, CELLS, target=0.7)       # a: 3/4 at k = 1; b: 2/3 until k = 2
    assert r["per_cell"].to_dict() == {"a": 1, "b": 2} and r["k"] == 1  # overall 5/7 at k = 1
    r = review.k_needed(CONF, PRED, LABELS, CELLS, target=0.999, cost=hand_cost())
    assert r["per_cell"].to_dict() == {"a": 1, "b": 2} and r["k"] == 2
    r = review.k_needed(CONF, PRED, LABELS, CELLS, target=0.8, cost=hand_cost())
    assert r["k"] == 1                                                # 6/7 at k = 1


def test_flag_precision_by_hand():
    """k = 1 flags a's 1 (wrong) and b's first (right); k = 2 also a's 2 and b's 3, both wrong."""
    r = review.flag_precision(CONF, PRED, LABELS, CELLS, 1)
    assert (r["precision"], r["recall"], r["flagged"], r["errors"]) == (0.5, pytest.approx(1 / 3), 2, 3)
    r = review.flag_precision(CONF, PRED, LABELS, CELLS, 2)
    assert (r["precision"], r["recall"]) == (0.75, 1.0)
    assert np.isnan(review.flag_precision(CONF, LABELS, LABELS, CELLS, 1)["recall"])


def test_rejection_curve_by_hand():
    """Expected errors: a 0.1 + 0.9 + 0.5 + 0.2 = 1.7, b 0.8 + 0.7 + 0.05 = 1.55, c 0.01: a goes first, then
    b."""
    cells, labels = np.append(CELLS, "c"), np.append(LABELS, 5)
    pred, prob = np.append(PRED, 5), np.append(CONF, 0.99)
    t = review.rejection_curve(prob, pred, labels, cells, fractions=(0, 0.34, 0.67))
    assert list(t["cells_kept"]) == [3, 2, 1]
    np.testing.assert_allclose(t["rejected"], [0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(t["accuracy"], [5 / 8, 3 / 4, 1])
    np.testing.assert_allclose(t["cell_accuracy"], [(1 / 2 + 2 / 3 + 1) / 3, (2 / 3 + 1) / 2, 1])
    np.testing.assert_allclose(t["cells_right"], [1 / 3, 1 / 2, 1])


def test_errors_per_cell_and_cells_fully_right():
    cells, labels, pred = np.append(CELLS, "c"), np.append(LABELS, 5), np.append(PRED, 5)
    assert review.errors_per_cell(pred, labels, cells).to_dict() == {"a": 2, "b": 1, "c": 0}
    assert review.cells_fully_right(pred, labels, cells) == pytest.approx(1 / 3)


# --- bad input -----------------------------------------------------------------------------------------

def test_bad_input():
    with pytest.raises(ValueError, match="lengths"):
        review.review_curve(CONF[:-1], PRED, LABELS, CELLS)
    with pytest.raises(ValueError, match="no chromosomes"):
        review.flag_precision([], [], [], [], 1)
    with pytest.raises(ValueError, match="empty cell"):
        review.review_queue([])
    with pytest.raises(ValueError, match="cannot be assigned"):
        karyotype.assignment_margins(np.zeros((0, 24)))
    with pytest.raises(ValueError, match="1..24"):
        review.errors_per_cell([0, 1], [1, 1], ["a", "a"])
    with pytest.raises(ValueError, match="cost must be"):
        review.reviewed(CONF, PRED, LABELS, CELLS, 1, cost=np.zeros((7, 23)))
    with pytest.raises(ValueError, match="target"):
        review.k_needed(CONF, PRED, LABELS, CELLS, target=0)
    with pytest.raises(ValueError, match="fraction"):
        review.rejection_curve(CONF, PRED, LABELS, CELLS, fractions=(1.0,))
    with pytest.raises(ValueError, match="calibrate the score first"):
        review.expected_calibration_error([1.5], [1])
    with pytest.raises(ValueError, match="scores for"):
        review.fit_calibration([1, 2, 3], [1, 0])
    with pytest.raises(ValueError, match="both right and wrong"):
        review.fit_calibration([1, 2, 3], [1, 1, 1])
    with pytest.raises(ValueError, match="method"):
        review.fit_calibration([1, 2], [1, 0], method="platt")


def test_a_validation_split_without_errors_still_calibrates():
    """A run whose validation assignment is perfect: one pseudo-error at margin 0 keeps the fit possible."""
    from chromo import karyotype
    from chromo.review import calibrate, calibration_for

    labels = np.array(karyotype.normal_labels("XY"))
    logits = np.full((46, 24), -5.0)
    logits[np.arange(46), labels - 1] = 5.0
    val = {"logits": logits, "labels": labels, "cells": np.zeros(46, int)}
    model = calibration_for(val)
    p = calibrate(np.array([0.0, 50.0]), model)
    assert 0 < p[0] <= p[1] < 1


def test_queue_record_keeps_each_curve_and_the_corrections_needed_for_metrics_json():
    import pandas as pd

    from chromo.book import checks

    curve = pd.DataFrame({"k": [1, 0, 0], "reassign": [False, False, True], "confidence": "assignment",
                          "accuracy": [1.0, 0.5, 0.75], "cells_right": [1.0, 0.0, 0.5], "checked": 0.0})
    out = {"k_needed_assignment": np.int64(1), "k_needed_softmax": None,
           "flags_assignment": {"precision": 1.0, "flagged": 1}}
    record = checks.queue_record(curve, out)
    assert record["k_needed_assignment"] == 1 and type(record["k_needed_assignment"]) is int
    assert record["k_needed_softmax"] is None
    assert record["flags_assignment"] == {"precision": 1.0, "flagged": 1}
    assert record["curve_assignment_corrected"] == {"k": [0, 1], "accuracy": [0.5, 1.0],
                                                    "cells_right": [0.0, 1.0]}
    assert record["curve_assignment_resolved"] == {"k": [0], "accuracy": [0.75], "cells_right": [0.5]}
    json.dumps(record)
