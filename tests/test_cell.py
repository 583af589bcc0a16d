"""One path from a cell to its karyotype: `chromo classify` and the evaluation both call cell.predict_cell."""
import numpy as np
import pytest

from chromo import class_name, karyotype
from chromo.cell import predict_cell
from chromo.classify import Classifier, read_cell
from chromo.data.synthetic import write_cell
from chromo.evaluate import predictions_from, select
from chromo.inference import predict
from chromo.matching import label_feature_vectors
from chromo.run import Run
from tests.test_classify import run, synthetic_manifest  # noqa: F401 (module fixtures)


@pytest.mark.parametrize("formula", ["47,XY,+21", "46,XX"])
def test_classify_and_the_evaluation_give_one_answer(run, synthetic_manifest, tmp_path, formula):  # noqa: F811
    """The same cell's logits and features through `chromo classify` and through evaluate.predictions_from
    (what every number in the book comes from), with the run's own settings: the same labels for the
    assignment, LFV and LFV + LRd, and the same formula."""
    cell = synthetic_manifest[synthetic_manifest["cell_formula"] == formula]["cell"].iloc[0]
    files = sorted(write_cell(synthetic_manifest, cell, tmp_path / "c"))
    clf = Classifier(run)
    table, report, _ = clf.classify(files)
    # classify's own inputs
    logits, features = predict(clf.net, clf.objects(read_cell(files)[0])[0], clf.cfg)
    n, m = len(files), clf.cfg.matching
    t = {"features": features, "logits": logits, "labels": np.ones(n, int), "cells": np.array([cell] * n),
         "paths": np.array([str(f) for f in files])}
    pred = predictions_from(Run(run).features("val", "ki"), {"ki": t}, "ki", m.gamma, m.beta, (m.distance,),
                            m.extra_penalty, m.missing_penalty)
    names = lambda method: [class_name(k) for k in select(pred, method)["pred"]]  # noqa: E731
    assert names("assign") == list(table["predicted"])
    assert names("lfv") == list(table["lfv_label"])
    assert names("lfv+lrd") == list(table["lrd_label"])
    assert names("dcnn") == list(table["top1"])
    assert karyotype.formula(select(pred, "assign")["pred"]) == report["formula"]


def test_predict_cell_by_hand():
    """Two classes with features on the axes; a cell of 46 whose softmax puts three chromosomes on class 1.
    DCNN keeps three 1s; the assignment moves the one that is a 2 to its free second choice; LFV labels each
    chromosome by its axis, and LRd (beta = 40: 40 in the head) keeps those labels, each taken at most
    twice."""
    lab = np.array(karyotype.normal_labels("XY"))                    # 46 labels, two of each autosome, X, Y
    logits = np.full((46, 24), -10.0)
    logits[np.arange(46), lab - 1] = 5.0
    i3 = np.flatnonzero(lab == 2)[0]                                  # a chromosome 2 that looks like a 1
    logits[i3, 0], logits[i3, 1] = 4.0, 3.0                           # p(1) > p(2): DCNN says 1
    feats = np.eye(24)[lab - 1] + 0.01                                # each on its class axis
    feats[i3] = np.eye(24)[1] + 0.01
    lfv = label_feature_vectors(np.eye(24), np.arange(1, 25))         # LFV_k = e_k
    c = predict_cell(logits, feats, {"cosine": lfv}, beta=40)
    assert c.dcnn[i3] == 1 and (c.dcnn == 1).sum() == 3
    assert c.assign[i3] == 2 and c.formula == "46,XY" and c.hypothesis == "XY"
    assert (c.lfv["cosine"] == lab).all() and (c.lrd["cosine"] == lab).all()
    assert c.head["cosine"].sum() == 40
    np.testing.assert_allclose(c.probs.sum(1), 1.0)
