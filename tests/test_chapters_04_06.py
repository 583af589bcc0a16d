"""Chapters 04-06 (Figs 9, 10, 12 and Tables 2, 3 beside ours): the evaluation helpers on hand-made tables
and the figures they draw."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from chromo.book import plots  # noqa: E402
from chromo.evaluate import best_beta, best_beta_summary, case_table, lrd_rounds  # noqa: E402


def _rows(query, method, distance, cells, labels, preds, **extra):
    return pd.DataFrame({"cell": cells, "label": labels, "pred": preds, "query": query, "method": method,
                         "distance": distance, **extra})


@pytest.fixture
def pred():
    """Two cells (a: 4 chromosomes, b: 2), MI and KI queries, LFV + LRd with the cosine base."""
    cells = ["a", "a", "a", "a", "b", "b"]
    labels = [19, 21, 19, 14, 1, 1]
    return pd.concat([
        _rows("mi", "lfv+lrd", "cosine", cells, labels, [19, 21, 21, 18, 1, 1]),
        _rows("ki", "lfv+lrd", "cosine", cells, labels, [19, 21, 19, 14, 1, 2]),
        _rows("mi", "dcnn", None, cells, labels, [1, 1, 1, 1, 1, 1]),
    ], ignore_index=True)


def test_case_table_per_cell(pred):
    t = case_table(pred)
    assert list(t.index) == ["a", "b"]
    assert list(t.columns) == ["chromosomes", "accuracy_mi", "errors_mi", "wrong_mi",
                               "accuracy_ki", "errors_ki", "wrong_ki"]
    assert t["chromosomes"].tolist() == [4, 2]
    assert t["accuracy_mi"].tolist() == [0.5, 1.0]                  # a: 19-1, 21-1 right; 19-2, 14-1 wrong
    assert t["errors_mi"].tolist() == [2, 0]
    # in the order of the true class (14 before 19); 19-2: the second 19 of cell a, taken for a 21
    assert t.loc["a", "wrong_mi"] == "14-1 (18), 19-2 (21)"
    assert t.loc["b", "wrong_mi"] == "None"                # as the paper prints a case without error
    assert t["accuracy_ki"].tolist() == [1.0, 0.5]
    assert t.loc["b", "wrong_ki"] == "1-2 (2)"
    assert t.loc["a", "wrong_ki"] == "None"


def test_case_table_mi_only_and_other_method(pred):
    mi = pred[pred["query"] == "mi"]
    t = case_table(mi)
    assert "accuracy_ki" not in t and t["accuracy_mi"].tolist() == [0.5, 1.0]
    d = case_table(mi, "dcnn", None)                                 # DCNN has no distance
    assert d["accuracy_mi"].tolist() == [0.0, 1.0]
    assert d.loc["a", "wrong_mi"] == "14-1 (1), 19-1 (1), 19-2 (1), 21-1 (1)"


def test_lrd_rounds_by_hand():
    """Cell a: head = first two chromosomes (one right), tail = the other two (both right)."""
    cells, labels = ["a"] * 4, [1, 2, 3, 4]
    frames = []
    rounds = (("cosine", [1, 9, 3, 9], [1, 9, 3, 4]), ("euclid", [1, 2, 3, 4], [1, 2, 9, 9]))
    for metric, first, second in rounds:
        frames.append(_rows("mi", "lfv", metric, cells, labels, first))
        frames.append(_rows("mi", "lfv+lrd", metric, cells, labels, second, head=[True, True, False, False]))
    r = lrd_rounds(pd.concat(frames, ignore_index=True), "mi")
    assert r.loc["a", ("cosine", "first")] == 0.5
    assert r.loc["a", ("cosine", "second")] == 0.75
    assert r.loc["a", ("cosine", "second, head")] == 0.5
    assert r.loc["a", ("cosine", "second, tail")] == 1.0
    assert r.loc["a", ("euclid", "first")] == 1.0
    assert r.loc["a", ("euclid", "second, head")] == 1.0
    assert r.loc["a", ("euclid", "second, tail")] == 0.0


def _sweep():
    """Cell a: betas 1 and 3 tie at the best; cell b: every beta ties; three betas swept."""
    return pd.DataFrame({"cell": ["a"] * 3 + ["b"] * 3, "beta": [1, 2, 3] * 2,
                         "accuracy": [0.9, 0.8, 0.9, 1.0, 1.0, 1.0]})


def test_best_beta_and_summary():
    b = best_beta(_sweep(), near=2)
    assert b.set_index("cell")[["lowest", "highest", "betas", "nearest"]].to_dict("index") == {
        "a": {"lowest": 1, "highest": 3, "betas": 2, "nearest": 1},   # 1 and 3 are as near 2: the first
        "b": {"lowest": 1, "highest": 3, "betas": 3, "nearest": 2}}
    s = best_beta_summary(b, n_betas=3, near=2)
    assert s == {"cells": 2, "every beta ties": 1, "2 among the best": 1, "median lowest best beta": 1.0,
                 "median highest best beta": 3.0}


def test_fig10_per_cell_figure():
    parts = ["first", "second", "second, head", "second, tail"]
    cols = pd.MultiIndex.from_product([["cosine", "euclid"], parts])
    rounds = pd.DataFrame(np.full((3, 8), 0.9), index=["a", "b", "c"], columns=cols)
    rounds.loc["c", ("cosine", "second, tail")] = np.nan                    # a cell without a tail
    fig = plots.lrd_rounds_per_cell(rounds, "t")
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "2tail-Hausdorff_cosine (mean 0.9000)" in legend and len(fig.axes) == 2
    plt.close(fig)


def test_best_beta_strip_and_curves():
    b = best_beta(_sweep())
    fig = plots.best_beta_strip({"ours": b}, {"the paper's": [38, 22, 40]}, mark=40)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["ours", "the paper's"]
    plt.close(fig)
    curves = {"mean": _sweep().groupby("beta")["accuracy"].mean()}
    fig = plots.beta_curves(curves, mark=2, chosen={"mean": 1})
    lo, hi = fig.axes[0].get_ylim()
    assert hi - lo >= 0.05 - 1e-9                                           # min_span
    plt.close(fig)


def test_per_cell_differences_leaves_out_missing_cells():
    t = pd.DataFrame({"ref": [0.0, 0.0, 0.0], "x": [0.1, 0.3, np.nan]}, index=["a", "b", "c"])
    fig = plots.per_cell_differences(t)
    text = " ".join(a.get_text() for a in fig.axes[0].texts)
    assert "mean +20.00" in text and "of 2" in text and "nan" not in text
    plt.close(fig)


def test_failure_gallery_size():
    img = np.zeros((8, 4), np.uint8)
    fig = plots.failure_gallery([img], ["1 -> 2"], [[img]], [[img]], size=2.0)
    assert fig.get_figwidth() == pytest.approx(6.0)                          # three columns of 2 inches
    plt.close(fig)
