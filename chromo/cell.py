"""One cell's prediction, the single path from a cell's logits and features to its labels and karyotype.

DCNN (softmax argmax), LFV (nearest label feature vector, eq. 5 with one query), LFV + LRd (section II-D)
for each distance metric, and the karyotype assignment (beyond the paper) on -log p, plus the relative-size
cost where the run has that prior (chromo.karyotype.size_cost). `chromo classify`
and the evaluation (chromo.evaluate.predictions) both call `predict_cell`, so the command a lab runs and
the numbers the book reports cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chromo.karyotype import assign_karyotype
from chromo.matching import label_redistribution, lfv_distances, neg_log_softmax, predict_dcnn


@dataclass
class CellPrediction:
    """Labels are classes 1..24, one per chromosome of the cell, in the input order; the dicts map each
    distance metric ('cosine', 'euclid') to that metric's result."""
    dcnn: np.ndarray              # [n] softmax argmax
    nll: np.ndarray               # [n, 24] -log p(k | x), the assignment's cost (with `size`, if given)
    assign: np.ndarray            # [n] after the karyotype assignment
    formula: str                  # of the assignment, e.g. '47,XY,+21'
    hypothesis: str               # sex hypothesis the assignment kept: 'XX' or 'XY'
    lfv: dict                     # metric -> [n] nearest LFV
    min_distance: dict            # metric -> [n] distance to that LFV
    lrd: dict                     # metric -> [n] after Label Redistribution
    head: dict                    # metric -> [n] bool, in LRd's head

    @property
    def probs(self) -> np.ndarray:
        """p(k | x) [n, 24]."""
        return np.exp(-self.nll)


def predict_cell(logits, features, lfvs: dict, beta: float = 40, extra_penalty: float = 4.0,
                 missing_penalty: float = 4.0, size=None) -> CellPrediction:
    """Every method's labels for the chromosomes of ONE cell.

    logits [n, 24] and features [n, D] of the cell; `lfvs` maps each metric to (lfv [24, D], present [24])
    from chromo.matching.label_feature_vectors; beta is LRd's head size (of 46); the penalties are those of
    chromo.karyotype.assign_karyotype; `size` [n, 24] (chromo.karyotype.size_cost, or None) is added to
    the assignment's cost. DCNN, LFV and LRd (the paper's methods) never see it."""
    logits, features = np.asarray(logits), np.asarray(features)
    nll = neg_log_softmax(logits)
    a = assign_karyotype(nll if size is None else nll + size, extra_penalty, missing_penalty)
    out = CellPrediction(predict_dcnn(logits), nll, np.asarray(a["labels"], int), a["formula"], a["hypothesis"],
                         {}, {}, {}, {})
    for metric, (lfv, present) in lfvs.items():
        d = lfv_distances(features, lfv, present, metric=metric)      # [n, 24]
        r = label_redistribution(d, beta)                              # its first round is LFV
        out.lfv[metric], out.min_distance[metric] = r["first"], r["min_distance"]
        out.lrd[metric], out.head[metric] = r["second"], r["head"]
    return out
