"""Every equation on a tiny hand-computed example."""
import numpy as np
import pytest
import torch

from chromo import evaluate, karyotype, matching
from chromo.losses import CenterLoss, joint_loss


def test_base_distances_eq6_eq7():
    A, B = [[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    np.testing.assert_allclose(matching.pairwise_distance(A, B, "cosine"), [[0.0, 1.0, 1 - 1 / np.sqrt(2)]],
                               atol=1e-12)
    np.testing.assert_allclose(matching.pairwise_distance([[0.0, 0.0]], [[3.0, 4.0]], "euclid"), [[5.0]])
    with pytest.raises(ValueError, match="unknown distance"):
        matching.pairwise_distance(A, B, "manhattan")


def test_label_feature_vectors_eq4():
    lfv, present = matching.label_feature_vectors([[1, 0], [3, 0], [0, 2]], [1, 1, 2], gamma=1.5)
    np.testing.assert_allclose(lfv[0], [3.0, 0.0])      # 1.5 * mean([1,0],[3,0])
    np.testing.assert_allclose(lfv[1], [0.0, 3.0])      # 1.5 * [0,2]
    assert present[:2].all() and not present[2:].any()
    d = matching.lfv_distances([[1, 0]], lfv, present, "euclid")
    assert d[0, 0] == pytest.approx(2.0) and np.isinf(d[0, 5])


def test_hausdorff_eq5_is_directed():
    A, B = [[0, 0], [10, 0]], [[1, 0], [0, 3]]
    assert matching.hausdorff(A, B, "euclid") == pytest.approx(9.0)   # max(min(1, 3), min(9, sqrt(109)))
    assert matching.hausdorff(B, A, "euclid") == pytest.approx(3.0)   # max(min(1, 9), min(3, sqrt(109)))


def test_center_loss_eq2_and_wen_update():
    c = CenterLoss(n_classes=2, dim=2, rate=0.5)
    f, y = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0, 0])
    assert c(f, y).item() == pytest.approx(0.5 * (5 + 25) / 2)        # 1/2 sum ||x - c||^2 / m
    c.update(f, y)   # delta c0 = ((0-1)+(0-3), (0-2)+(0-4)) / (1+2);  c0 = 0 - 0.5 * delta
    np.testing.assert_allclose(c.centers.numpy(), [[2 / 3, 1.0], [0.0, 0.0]], rtol=1e-6)


def test_joint_loss_eq3():
    c = CenterLoss(2, 2)
    logits = torch.zeros(2, 2)
    total, ls, lc = joint_loss(logits, torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0, 1]), c,
                               alpha=0.5)
    assert ls.item() == pytest.approx(np.log(2))
    assert lc.item() == pytest.approx(0.5 * (5 + 25) / 2)
    assert total.item() == pytest.approx(np.log(2) + 0.5 * 7.5)


def test_per_cell_accuracy_eq8_eq9():
    pred, true = [1, 2, 3, 4, 5, 6], [1, 2, 0, 0, 5, 6]
    cells = ["a", "a", "a", "a", "b", "b"]
    acc = evaluate.per_cell_accuracy(pred, true, cells)
    assert acc["a"] == 0.5 and acc["b"] == 1.0
    assert evaluate.mean_cell_accuracy(pred, true, cells) == pytest.approx(0.75)   # eq. 9: mean over cells
    assert evaluate.overall_accuracy(pred, true) == pytest.approx(4 / 6)          # per chromosome


def test_wrong_prediction_notation():
    t = evaluate.wrong_predictions([19, 21, 21, 23], [19, 19, 21, 24], ["a", "a", "a", "b"])
    assert t.set_index("cell")["wrong_predictions"].to_dict() == {"a": "19-2 (21)", "b": "Y-1 (X)"}


def test_formula():
    normal = [k for k in range(1, 23) for _ in (0, 1)]
    assert karyotype.formula(normal + [23, 24]) == "46,XY"
    assert karyotype.formula(normal + [23, 23]) == "46,XX"
    assert karyotype.formula(normal + [21, 23, 24]) == "47,XY,+21"
    assert karyotype.formula(normal + [23]) == "45,X"
    assert karyotype.formula([k for k in normal if k != 7] + [23, 23]) == "44,XX,-7,-7"
    assert karyotype.formula(normal[:12] + normal[13:] + [23, 23]) == "45,XX,-7"
    assert karyotype.formula(normal + [23, 23, 24]) == "47,XXY"


def test_head_size_count_and_fraction():
    assert matching.head_size(40, 46) == 40
    assert matching.head_size(40, 47) == 41          # round(40/46 * 47)
    assert matching.head_size(40, 45) == 39          # round(40/46 * 45)
    assert matching.head_size(0.5, 46) == 23


def test_records_and_karyotype_summary():
    import pandas as pd

    normal = [k for k in range(1, 23) for _ in (0, 1)]
    labels = normal + [21, 23, 24] + normal + [23, 23]           # cell a: 47,XY,+21; cell b: 46,XX
    cells = ["a"] * 47 + ["b"] * 46
    pred = list(labels)
    pred[0] = 2                                                  # one error in cell a
    df = pd.DataFrame({"cell": cells, "label": labels, "pred": pred, "query": "ki", "method": "assign",
                       "distance": None})
    (r,) = evaluate.records(df, "pki3", "eresnet-u1c0")
    assert r["accuracy_mean_cell"] == pytest.approx((46 / 47 + 1) / 2)
    assert r["accuracy_overall"] == pytest.approx(92 / 93) and r["cells"] == 2 and r["distance"] is None
    t = evaluate.karyotype_table(df, "assign")
    assert t.set_index("cell")["predicted_formula"].to_dict() == {"a": "47,XY,-1,+2,+21", "b": "46,XX"}
    s = evaluate.karyotype_summary(t)
    assert s == {"cells": 2, "formula_accuracy": 0.5, "abnormal_cells": 1, "abnormal_detected": 0,
                 "abnormal_flagged": 1, "normal_flagged_abnormal": 0, "wrong_sex": 0}
    pred[-1] = 24                                                # cell b read as XY: a wrong sex
    t = evaluate.karyotype_table(df.assign(pred=pred), "assign")
    assert evaluate.karyotype_summary(t)["wrong_sex"] == 1 and karyotype.sex("47,XY,+21") == "XY"


def test_paired_difference_mean_and_bootstrap_interval():
    # per-cell differences b - a: +0.1, 0, -0.05, +0.15 -> mean 0.05; 2 better, 1 worse of 4
    s = evaluate.paired_difference([0.9, 1.0, 1.0, 0.8], [1.0, 1.0, 0.95, 0.95])
    assert s["mean"] == pytest.approx(0.05)
    assert (s["better"], s["worse"], s["cells"]) == (2, 1, 4)
    # a resampled mean stays within the extremes
    assert -0.05 <= s["low"] <= s["mean"] <= s["high"] <= 0.15
    same = evaluate.paired_difference([0.5, 0.7], [0.5, 0.7])
    assert (same["mean"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        evaluate.paired_difference([], [])


def test_figures_render_with_categorical_classes_and_paired_differences():
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    from chromo.book import plots

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 25), 3)
    fig = plots.feature_projection(rng.normal(size=(72, 8)), labels)
    names = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert names[-2:] == ["X", "Y"] and len(names) == 24 and len(fig.axes) == 1   # a legend, no colour bar
    cm = evaluate.confusion(labels, np.roll(labels, 1))
    assert plots.confusion_heatmap(cm) is not None
    t = pd.DataFrame({"LFV": [0.9, 1.0, 0.8], "LFV + LRd": [1.0, 1.0, 0.7]})
    fig = plots.per_cell_differences(t)
    assert [x.get_text() for x in fig.axes[0].get_yticklabels()] == ["LFV + LRd"]
    img = np.zeros((8, 8), np.uint8)
    fig = plots.failure_gallery([img], ["1 -> 2"], [[img, img]], [[img]])
    assert {t.get_text().split("\n")[0] for t in fig.texts} - {""} == {"query", "examples of",
                                                                       "examples of the"}
