"""FVM matching, the evaluation's prediction table and the beta sweep, on hand-made features whose answers
are worked out by hand in the comments (no trained model involved)."""
import json

import numpy as np
import pandas as pd
import pytest

from chromo import config, karyotype
from chromo.evaluate import beta_sweep, predictions_from, records
from chromo.matching import predict_fvm

NORMAL = [k for k in range(1, 23) for _ in (0, 1)]      # two of each autosome, in class order


# --- FVM: the nearest gallery image --------------------------------------------------------------------
# Gallery, 2-D: cell A holds g0 = (1, 0) labelled 1 and g1 = (0, 1) labelled 3; cell B holds g2 = (3, 3)
# labelled 2 and g3 = (-1, 0) labelled 4.
GALLERY = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [-1.0, 0.0]])
G_LABELS = np.array([1, 3, 2, 4])
G_CELLS = np.array(["A", "A", "B", "B"])


def test_fvm_cosine_and_euclid_disagree_on_one_point():
    # q0 = (1, 0.9): its angle to (3, 3) is 45 - 42.0 = 3.0 degrees, to (1, 0) 42.0 degrees, so cosine takes
    # g2 (label 2); in Euclid it is 0.9 from g0 and sqrt(2^2 + 2.1^2) = 2.90 from g2, so Euclid takes g0 (1).
    # q1 = (2, 0): same direction as g0, and 1.0 from it (3.16 from g2): label 1 for both.
    q = np.array([[1.0, 0.9], [2.0, 0.0]])
    cos, dcos = predict_fvm(q, GALLERY, G_LABELS, "cosine")
    euc, deuc = predict_fvm(q, GALLERY, G_LABELS, "euclid")
    assert cos.tolist() == [2, 1]
    assert euc.tolist() == [1, 1]
    # the returned distance is the distance to the chosen image
    assert dcos[0] == pytest.approx(1 - 5.7 / (np.sqrt(1.81) * np.sqrt(18)))   # 1 - q0.g2 / (|q0| |g2|)
    assert dcos[1] == pytest.approx(0.0, abs=1e-12)
    assert deuc == pytest.approx([0.9, 1.0])


def test_fvm_with_cells_matches_only_the_same_cells_gallery():
    # q0 = (1, 0.9) in cell A: over the whole gallery cosine takes g2 of cell B (label 2); within A,
    # cos(q0, g0) = 0.743 > cos(q0, g1) = 0.669, so g0 (label 1).
    # q1 = (-1, 0.1) in cell A: globally g3 of cell B (label 4, cosine 0.995); within A, g1 (0.0995) beats
    # g0 (-0.995): label 3.  q2 = (1, 0.9) in cell B: within B, g2 (label 2).
    q = np.array([[1.0, 0.9], [-1.0, 0.1], [1.0, 0.9]])
    q_cells = np.array(["A", "A", "B"])
    free, _ = predict_fvm(q, GALLERY, G_LABELS, "cosine")
    assert free.tolist() == [2, 4, 2]
    lab, dist = predict_fvm(q, GALLERY, G_LABELS, "cosine", q_cells, G_CELLS)
    assert lab.tolist() == [1, 3, 2]
    assert np.isfinite(dist).all()
    assert dist[0] == pytest.approx(1 - 1 / np.sqrt(1.81))                 # to g0, not to the excluded g2
    # Euclid within cells: q1 = (-1, 0.1) is sqrt(1 + 0.81) from g1 and sqrt(4 + 0.01) from g0: label 3;
    # q2 = (1, 0.9) in B is sqrt(4 + 0.81) = 2.19 from g3 and sqrt(4 + 4.41) = 2.90 from g2: label 4
    lab_e, dist_e = predict_fvm(q, GALLERY, G_LABELS, "euclid", q_cells, G_CELLS)
    assert lab_e.tolist() == [1, 3, 4]
    assert dist_e == pytest.approx([0.9, np.sqrt(1.81), np.sqrt(4.81)])


# --- the prediction table on two hand-made cells ---------------------------------------------------------
# Features live in D = 26 dimensions: dimension k - 1 is class k, NOISE a direction no class owns, MARK a
# direction only the special images below use. Validation (the LFV source and the native FVM gallery): two
# images per class, s_k e_k +- 0.05 e_NOISE (class 6 also s_6 e_6), so LFV_k = s_k e_k exactly; s_20 = 3,
# every other s_k = 1 (a long LFV is far from everything in Euclid but not in cosine).
D, NOISE, MARK = 26, 24, 25
SCALE = {20: 3.0}


def _e(dim):
    v = np.zeros(D)
    v[dim] = 1.0
    return v


def _c(k):
    return _e(k - 1)


def _val():
    feats, labels = [], []
    for k in range(1, 25):
        for sign in (1, -1) if k != 6 else (1, 0, -1):    # three images of class 6: a mean, not a sum
            feats.append(SCALE.get(k, 1.0) * _c(k) + sign * 0.05 * _e(NOISE))
            labels.append(k)
    n = len(labels)
    return {"features": np.array(feats), "logits": np.zeros((n, 24)), "labels": np.array(labels),
            "cells": np.array(["V"] * n), "paths": np.array([f"val/{i}.png" for i in range(n)])}


def _noise_t(cos_d):
    """The NOISE coefficient t that puts e_k + t e_NOISE at cosine distance cos_d from e_k (Euclid: t)."""
    return np.sqrt(1 / (1 - cos_d) ** 2 - 1)


# Cell A (46,XY) and cell B (46,XX), chromosomes in NORMAL order; index i within a cell:
#   easy chromosome of class k: s_k e_k + 0.005 (i + 1) e_NOISE (right for every method, t <= 0.23)
#   A8  (a 5):  0.5 e5 + 0.6 e6   cosine: d6 = 1 - 0.6/sqrt(0.61) = 0.232, d5 = 0.360; Euclid: d6 = 0.640,
#                                  d5 = 0.781. Nearest LFV 6 under both metrics (wrong).
#   A9  (a 5):  e5 + t e_NOISE, cosine distance 0.30 (Euclid 1.02)
#   A10, A11 (the 6s): cosine distances 0.15 and 0.16 (Euclid 0.620 and 0.646)
#   B16 (a 9):  e9 + e_MARK       (nearest LFV 9: cosine 0.293, Euclid 1.0)
#   B36 (a 19): e19 + 1.2 e20     cosine: d20 = 1 - 1.2/sqrt(2.44) = 0.232 < d19 = 0.360, so 20 (wrong);
#                                  Euclid: |x - e19| = 1.2 < |x - 3 e20| = 2.06, so 19 (right).
# Logits: 5 on the true class, 0 elsewhere, except A0 (a 1): 4 on class 1, 5 on class 2, and B42 (a 22):
# 4 on class 22, 5 on class 21. So the DCNN gives three 2s in A and three 21s in B.
# MI queries: the KI feature, except A12 (a 7) = 0.3 e7 + e_MARK and B18 (a 10) = 0.3 e10 + e_MARK.
A8, A9, A12, B16, B18, B36, A0, B42 = 8, 9, 12, 16, 18, 36, 0, 42


def _cell_features(sex, cell):
    labels = NORMAL + sex
    x = np.array([SCALE.get(k, 1.0) * _c(k) + 0.005 * (i + 1) * _e(NOISE) for i, k in enumerate(labels)])
    logits = 5.0 * np.eye(24)[np.array(labels) - 1]
    if cell == "A":
        x[A8] = 0.5 * _c(5) + 0.6 * _c(6)
        x[A9] = _c(5) + _noise_t(0.30) * _e(NOISE)
        x[10] = _c(6) + _noise_t(0.15) * _e(NOISE)
        x[11] = _c(6) + _noise_t(0.16) * _e(NOISE)
        logits[A0, 0], logits[A0, 1] = 4.0, 5.0
    else:
        x[B16] = _c(9) + _e(MARK)
        x[B36] = _c(19) + 1.2 * _c(20)
        logits[B42, 21], logits[B42, 20] = 4.0, 5.0
    mi = x.copy()
    if cell == "A":
        mi[A12] = 0.3 * _c(7) + _e(MARK)
    else:
        mi[B18] = 0.3 * _c(10) + _e(MARK)
    return np.array(labels), x, mi, logits


# rows interleaved between the cells (a fixed shuffle): the per-cell steps must follow the cell column
PERM = np.random.default_rng(7).permutation(92)


def _test_sets():
    la, xa, ma, ga = _cell_features([23, 24], "A")
    lb, xb, mb, gb = _cell_features([23, 23], "B")
    labels, cells = np.concatenate([la, lb]), np.array(["A"] * 46 + ["B"] * 46)
    paths = np.array([f"{c}/{i}.png" for c, i in zip(cells, list(range(46)) * 2)])
    logits = np.concatenate([ga, gb])
    out = {}
    for q, f in (("ki", np.concatenate([xa, xb])), ("mi", np.concatenate([ma, mb]))):
        out[q] = {"features": f[PERM], "logits": logits[PERM], "labels": labels[PERM], "cells": cells[PERM],
                  "paths": paths[PERM]}
    return out, labels


def _expected(truth, changes):
    """The true labels with {('A' or 'B', index): label} changed, in the shuffled row order."""
    e = truth.copy()
    for (cell, i), k in changes.items():
        e[i + (46 if cell == "B" else 0)] = k
    return e[PERM]


@pytest.fixture(scope="module")
def table():
    feats, truth = _test_sets()
    return predictions_from(_val(), feats, "ki", 1.0, 40, ("cosine", "euclid")), truth


def _pick(pred, method, query, distance=None):
    g = pred[(pred["method"] == method) & (pred["query"] == query)]
    g = g[g["distance"].isna()] if distance is None else g[g["distance"] == distance]
    return g


def test_prediction_table_has_one_row_per_chromosome_method_query_and_distance(table):
    pred, truth = table
    n = pred.fillna({"distance": "-"}).groupby(["query", "method", "distance"]).size().to_dict()
    expected = {}
    for q in ("ki", "mi"):
        expected[(q, "dcnn", "-")] = expected[(q, "assign", "-")] = 92
        for m in ("cosine", "euclid"):
            for method in ("lfv", "lfv+lrd", "fvm"):
                expected[(q, method, m)] = 92
    assert n == expected
    paths = _test_sets()[0]["ki"]["paths"].tolist()
    for key, g in pred.groupby(["query", "method", pred["distance"].fillna("-")]):
        # each block keeps the input rows in their order, with their own cell, label and path
        assert g["label"].tolist() == truth[PERM].tolist(), key
        assert g["path"].tolist() == paths, key


def test_dcnn_is_the_argmax_of_the_logits(table):
    pred, truth = table
    feats, _ = _test_sets()
    for q in ("ki", "mi"):
        got = _pick(pred, "dcnn", q)["pred"].to_numpy()
        assert (got == feats[q]["logits"].argmax(1) + 1).all()
        assert (got == _expected(truth, {("A", A0): 2, ("B", B42): 21})).all()


def test_assignment_repairs_the_double_claims_in_each_46_chromosome_cell(table):
    pred, truth = table
    for q in ("ki", "mi"):
        dcnn, got = _pick(pred, "dcnn", q), _pick(pred, "assign", q)
        for cell, three in (("A", 2), ("B", 21)):
            assert karyotype.counts(dcnn[dcnn["cell"] == cell]["pred"])[three] == 3   # the argmax over-claims
            n = karyotype.counts(got[got["cell"] == cell]["pred"])
            assert all(n[k] == 2 for k in range(1, 23)), (q, cell, n)              # forced: two of each
        assert (got["pred"].to_numpy() == truth[PERM]).all()
        assert karyotype.formula(got[got["cell"] == "A"]["pred"]) == "46,XY"
        assert karyotype.formula(got[got["cell"] == "B"]["pred"]) == "46,XX"


def test_lfv_is_the_nearest_class_mean_for_each_metric(table):
    pred, truth = table
    for q in ("ki", "mi"):       # the MI changes (A12, B18) stay nearest to their own class mean
        cos, euc = _pick(pred, "lfv", q, "cosine"), _pick(pred, "lfv", q, "euclid")
        assert (cos["pred"].to_numpy() == _expected(truth, {("A", A8): 6, ("B", B36): 20})).all()
        assert (euc["pred"].to_numpy() == _expected(truth, {("A", A8): 6})).all()
    ki = _pick(pred, "lfv", "ki", "cosine").reset_index(drop=True)
    row = int(np.flatnonzero(PERM == A8)[0])                    # where A8 landed after the shuffle
    assert ki.loc[row, "min_distance"] == pytest.approx(1 - 0.6 / np.sqrt(0.61))
    row = int(np.flatnonzero(PERM == 46 + B36)[0])
    assert _pick(pred, "lfv", "ki",
                 "euclid").reset_index(drop=True).loc[row, "min_distance"] == pytest.approx(1.2)


def test_lrd_repairs_the_over_full_label_in_the_tail(table):
    # beta = 40: the tail of each cell is its 6 farthest chromosomes. In A (both metrics, both queries) it
    # holds A8, A9 and both 6s: label 6 has three claimants for two places, and moving A8 to 5 is the
    # cheapest repair (+0.128 cosine, +0.141 Euclid; any other move costs over 0.6). In B under cosine, B36
    # (taken for a 20) sits in the tail while both 20s are in the head: nothing is over-full, it stays 20.
    pred, truth = table
    for q in ("ki", "mi"):
        for m in ("cosine", "euclid"):
            g = _pick(pred, "lfv+lrd", q, m)
            want = _expected(truth, {("B", B36): 20} if m == "cosine" else {})
            assert (g["pred"].to_numpy() == want).all(), (q, m)
            assert (g["first"].to_numpy() == _pick(pred, "lfv", q, m)["pred"].to_numpy()).all()
            assert g.groupby("cell")["head"].sum().to_dict() == {"A": 40, "B": 40}
            head = g["head"].to_numpy()
            assert not head[PERM == A8].any() and not head[PERM == 46 + B36].any()


def test_fvm_uses_the_validation_gallery_for_ki_and_the_same_cells_ki_for_mi(table):
    # KI queries against the validation images: A8 is nearest a 6 image for both metrics, B36 nearest a 20
    # image under cosine (0.232) but a 19 image under Euclid (1.2).
    # MI queries against the KI images of their own cell: each unchanged query finds its own KI image
    # (distance 0, true label). B18 = 0.3 e10 + e_MARK is nearest B16 = e9 + e_MARK (cosine similarity 0.677
    # against 0.287 for the 10s; Euclid 1.04 against 1.22): label 9. A12 = 0.3 e7 + e_MARK would also be
    # nearest B16 over both cells, but within A its nearest is a 7. (Against the validation images B18 would
    # be a 10: the gallery matters.)
    pred, truth = table
    assert (_pick(pred, "fvm", "ki", "cosine")["pred"].to_numpy()
            == _expected(truth, {("A", A8): 6, ("B", B36): 20})).all()
    assert (_pick(pred, "fvm", "ki", "euclid")["pred"].to_numpy() == _expected(truth, {("A", A8): 6})).all()
    for m in ("cosine", "euclid"):
        assert (_pick(pred, "fvm", "mi", m)["pred"].to_numpy() == _expected(truth, {("B", B18): 9})).all(), m


def test_records_score_each_method_per_cell(table):
    pred, _ = table
    recs = {(r["method"], r["query"], r["distance"]): r for r in records(pred, "pki3", "eresnet-u1c0")}
    assert len(recs) == 16
    r = recs[("dcnn", "ki", None)]
    assert (r["cells"], r["chromosomes"]) == (2, 92)
    assert r["accuracy_mean_cell"] == pytest.approx(45 / 46)
    assert r["accuracy_overall"] == pytest.approx(90 / 92)
    assert recs[("assign", "ki", None)]["accuracy_mean_cell"] == 1.0
    r = recs[("lfv", "ki", "cosine")]                       # A: 45/46, B: 45/46
    assert r["accuracy_mean_cell"] == pytest.approx(45 / 46)
    r = recs[("lfv+lrd", "mi", "cosine")]                   # A: 46/46, B: 45/46
    assert r["accuracy_mean_cell"] == pytest.approx((1 + 45 / 46) / 2)
    assert recs[("lfv+lrd", "ki", "euclid")]["accuracy_mean_cell"] == 1.0


def test_records_average_over_cells_not_chromosomes():
    # eq. 9 weighs cells equally: cell A 2 of 3 right, cell B 1 of 1 -> (2/3 + 1) / 2 = 5/6; overall 3/4
    t = pd.DataFrame({"cell": ["A", "A", "A", "B"], "label": [1, 2, 3, 4], "pred": [1, 2, 9, 4],
                      "method": "lfv", "query": "ki", "distance": "cosine"})
    (r,) = records(t, "pki3", "m")
    assert r["accuracy_mean_cell"] == pytest.approx(5 / 6) and r["accuracy_overall"] == pytest.approx(3 / 4)
    assert (r["cells"], r["chromosomes"], r["distance"]) == (2, 4, "cosine")


# --- the beta sweep, through a run directory ---------------------------------------------------------------
# Cell P (46,XX, chromosomes in NORMAL order + X, X); distances to the LFVs (unit class vectors), cosine
# and Euclid:
#   P36 (a 19) = 0.5 e19 + 0.6 e20: cosine d20 = 0.232, d19 = 0.360; Euclid d20 = 0.640, d19 = 0.781
#   P37 (a 19) = e19 + t e_NOISE:   cosine 0.300, Euclid 1.021
#   P38, P39 (the 20s):             cosine 0.170, 0.180; Euclid 0.672, 0.698
#   P0 (a 1) = e1 + 0.655 e_NOISE:  cosine 0.1635, Euclid 0.655;  every other chromosome below 0.03 / 0.23
# P36 is taken for a 20 (three claimants of 20). LRd repairs it (P36 -> 19, +0.128) only when P36, both 20s
# and P37 (the only other 19) fall in the same part. The tail holds the 46 - beta farthest:
#   cosine, ascending ... P0, P38, P39, P36, P37: beta <= 42 repairs; 43 (P39, P36, P37) and 44 (P36, P37)
#     have no over-full label; 45: the tail is P37 alone, and in the head 19 is not among the labels while
#     every other label is full (XX cell), so P36 keeps 20; 46: one part holding everything, repaired.
#   Euclid, ascending ... P36, P0, P38, P39, P37: at beta = 42 P36 is in the head, alone with label 20 there,
#     so no repair; beta <= 41 repairs. A cosine/Euclid mix-up fails at beta = 42.
# Cell Q (46,XY): every chromosome right, accuracy 1 for every beta.
BETAS = [1, 40, 41, 42, 43, 44, 45, 46]
SWEEP_EXPECTED = {1: 1.0, 40: 1.0, 41: 1.0, 42: 1.0, 43: 45 / 46, 44: 45 / 46, 45: 45 / 46, 46: 1.0}


def _sweep_features():
    def cell(sex, special):
        labels = NORMAL + sex
        x = np.array([_c(k) + 0.005 * (i + 1) * _e(NOISE) for i, k in enumerate(labels)])
        if special:
            x[36] = 0.5 * _c(19) + 0.6 * _c(20)
            x[37] = _c(19) + _noise_t(0.30) * _e(NOISE)
            x[38] = _c(20) + _noise_t(0.17) * _e(NOISE)
            x[39] = _c(20) + _noise_t(0.18) * _e(NOISE)
            x[0] = _c(1) + 0.655 * _e(NOISE)
        return np.array(labels), x

    lp, xp = cell([23, 23], True)
    lq, xq = cell([23, 24], False)
    order = np.random.default_rng(3).permutation(92)          # the two cells interleaved
    labels, x = np.concatenate([lp, lq])[order], np.concatenate([xp, xq])[order]
    cells = np.array(["P"] * 46 + ["Q"] * 46)[order]
    test = {"features": x, "logits": np.zeros((92, 24), np.float32), "labels": labels, "cells": cells,
            "paths": np.array([f"t/{i}.png" for i in range(92)]), "index": np.arange(92)}
    val = {"features": np.array([_c(k) + s * 0.05 * _e(NOISE) for k in range(1, 25) for s in (1, -1)]),
           "logits": np.zeros((48, 24), np.float32), "labels": np.repeat(np.arange(1, 25), 2),
           "cells": np.array(["V"] * 48), "paths": np.array([f"v/{i}.png" for i in range(48)]),
           "index": np.arange(48)}
    return val, test


@pytest.fixture
def fake_run(tmp_path):
    """A run directory as training leaves it, as far as the analyses read it: config.yaml, provenance.json
    and the validation and test feature files of the native query style (KI for pki3)."""
    cfg = config.load("smoke", runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results"))
    run = cfg.run_dir("pki3", "eresnet-u1c0")
    run.mkdir(parents=True)
    config.save(cfg, run / "config.yaml")
    (run / "provenance.json").write_text(json.dumps({"dataset": "pki3", "model": "eresnet-u1c0"}))
    val, test = _sweep_features()
    np.savez(run / "features_val_ki.npz", **val)
    np.savez(run / "features_test_ki.npz", **test)
    return run


def test_beta_sweep_accuracy_where_lrd_changes_a_label(fake_run):
    s = beta_sweep(fake_run, betas=BETAS)
    assert list(s.columns[:3]) == ["cell", "beta", "accuracy"] and len(s) == 2 * len(BETAS)
    got = s.set_index(["cell", "beta"])["accuracy"]
    for b, acc in SWEEP_EXPECTED.items():
        assert got[("P", b)] == pytest.approx(acc), b
        assert got[("Q", b)] == 1.0, b
    # in the order the cells first appear, the betas in the order given
    first = pd.unique(_sweep_features()[1]["cells"])[0]
    assert s["cell"].iloc[0] == first and s["beta"].tolist()[:len(BETAS)] == BETAS


def test_beta_sweep_default_metric_is_cosine_not_euclid(fake_run):
    # beta = 42 repairs P36 under cosine only (see above); Euclid needs beta <= 41
    euc = beta_sweep(fake_run, betas=[41, 42], metric="euclid").set_index(["cell", "beta"])["accuracy"]
    assert euc[("P", 41)] == 1.0 and euc[("P", 42)] == pytest.approx(45 / 46)
    assert beta_sweep(fake_run, betas=[42]).set_index("cell").loc["P", "accuracy"] == 1.0


def test_penalty_sweep_hand_computed(tmp_path):
    """A normal 46,XY validation cell whose one chromosome 21 looks like a 22: logit 10 for 22, 7.5 for 21,
    so -log p(21) - (-log p(22)) = 2.5. Keeping it a 21 costs 2.5 more than putting it in an extra 22 slot,
    which costs extra_penalty + missing_penalty (the empty 21 slot): it stays right iff e + m > 2.5. Every
    other chromosome has logit 20 on its class (moving one costs ~20). Grid (1, 2): only (1, 1) is wrong."""
    from chromo.evaluate import penalty_sweep

    labels = np.array([k for k in range(1, 23) for _ in (0, 1)] + [23, 24])
    logits = np.zeros((46, 24), np.float32)
    logits[np.arange(46), labels - 1] = 20.0
    odd = np.flatnonzero(labels == 21)[0]
    logits[odd] = 0.0
    logits[odd, 21] = 10.0           # class 22 (0-based 21)
    logits[odd, 20] = 7.5            # class 21
    cfg = config.load("smoke", runs_dir=str(tmp_path / "runs"))
    run = cfg.run_dir("pki3", "eresnet-u1c0")
    run.mkdir(parents=True)
    config.save(cfg, run / "config.yaml")
    (run / "provenance.json").write_text(json.dumps({"dataset": "pki3", "model": "eresnet-u1c0"}))
    np.savez(run / "features_val_ki.npz", features=np.zeros((46, 4), np.float32), logits=logits,
             labels=labels,
             cells=np.array(["V"] * 46), paths=np.array([f"v/{i}.png" for i in range(46)]),
             index=np.arange(46))
    s = penalty_sweep(run, penalties=(1.0, 2.0)).set_index(["extra_penalty", "missing_penalty"])
    assert list(s.index) == [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0)]
    assert s.loc[(1.0, 1.0), "accuracy"] == pytest.approx(45 / 46) and s.loc[(1.0, 1.0),
                                                                             "formula_accuracy"] == 0.0
    for pair in [(1.0, 2.0), (2.0, 1.0), (2.0, 2.0)]:
        assert s.loc[pair, "accuracy"] == 1.0 and s.loc[pair, "formula_accuracy"] == 1.0
