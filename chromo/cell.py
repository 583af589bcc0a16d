"""One cell's prediction: the single road from a cell's logits and features to its labels and karyotype.

DCNN (softmax argmax), LFV (nearest label feature vector, eq. 5 with one query), LFV + LRd (section II-D)
for each distance metric, and the karyotype assignment (beyond the paper) on -log p plus, where the run has
that prior, the relative-size cost (chromo.karyotype.size_cost). `chromo classify`, the evaluation and every
sweep go through `predict_cell` or its cost-only sibling `assign_cells`, so the command a lab runs and the
numbers the book reports cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from chromo import CLASSES
from chromo.karyotype import assign_karyotype, assignment_margins, relative_size, size_cost
from chromo.matching import label_redistribution, lfv_distances, neg_log_softmax, predict_dcnn
from chromo.run import CheckpointError


@dataclass
class CellPrediction:
    """Labels are classes 1..24, one per chromosome of the cell, in the input order; the dicts map each
    distance metric ('cosine', 'euclid') to that metric's result."""
    dcnn: np.ndarray              # [n] softmax argmax
    nll: np.ndarray               # [n, 24] -log p(k | x)
    assign: np.ndarray            # [n] after the karyotype assignment
    margin: np.ndarray | None     # [n] what the cell's optimum pays more if a chromosome loses its label
    runner_up: np.ndarray | None  # [n] the label it takes then (both only when asked for: `margins`)
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
                 missing_penalty: float = 4.0, size=None, margins: bool = False) -> CellPrediction:
    """Every method's labels for the chromosomes of ONE cell.

    logits [n, 24] and features [n, D] of the cell; `lfvs` maps each metric to (lfv [24, D], present [24])
    from chromo.matching.label_feature_vectors; beta is LRd's head size (of 46); the penalties are those of
    chromo.karyotype.assign_karyotype; `size` [n, 24] (size_costs, or None) is added to the assignment's
    cost. DCNN, LFV and LRd (the paper's methods) never see it. With `margins`, the assignment's
    min-marginals come with it (karyotype.assignment_margins: how sure the cell's optimum is of each label;
    about 30 times the assignment's time)."""
    logits, features = np.asarray(logits), np.asarray(features)
    nll = neg_log_softmax(logits)
    cost = nll if size is None else nll + size
    a = (assignment_margins if margins else assign_karyotype)(cost, extra_penalty, missing_penalty)
    out = CellPrediction(predict_dcnn(logits), nll, np.asarray(a["labels"], int), a.get("margin"),
                         a.get("runner_up"), a["formula"], a["hypothesis"], {}, {}, {}, {})
    for metric, (lfv, present) in lfvs.items():
        d = lfv_distances(features, lfv, present, metric=metric)      # [n, 24]
        r = label_redistribution(d, beta)                              # its first round is LFV
        out.lfv[metric], out.min_distance[metric] = r["first"], r["min_distance"]
        out.lrd[metric], out.head[metric] = r["second"], r["head"]
    return out


def by_cell(cells):
    """(cell, indices of its chromosomes) for each cell, in order of first appearance."""
    cells = np.asarray(cells)
    for c in pd.unique(cells):
        yield c, np.flatnonzero(cells == c)


def assign_cells(cost, cells, extra_penalty: float = 4.0, missing_penalty: float = 4.0) -> tuple[np.ndarray,
                                                                                                 dict]:
    """The karyotype assignment of every cell of a split from its cost [N, 24] alone (-log p, plus a size
    cost where given): (labels [N], {cell: formula}). The same assignment as predict_cell's."""
    cost = np.asarray(cost)
    labels, formulas = np.zeros(len(cost), int), {}
    for c, idx in by_cell(cells):
        a = assign_karyotype(cost[idx], extra_penalty, missing_penalty)
        labels[idx], formulas[c] = a["labels"], a["formula"]
    return labels, formulas


def assignment_cost(f: dict, size_prior: dict | None = None, where: str = "features") -> np.ndarray:
    """The assignment's cost [N, 24] of a feature dict's chromosomes: -log p plus the relative-size cost."""
    size = size_costs(f, size_prior, where)
    return neg_log_softmax(f["logits"]) + (0 if size is None else size)


def size_costs(f: dict, prior: dict | None, where: str = "features") -> np.ndarray | None:
    """The relative-size cost [N, 24] of a feature dict's chromosomes (karyotype.size_cost, from their areas
    relative to their cell), or None where the prior is absent or its weight 0. A chromosome of area 0
    (nothing above the threshold; `chromo classify` also zeroes those shrunk to fit) gets no size cost and
    stays out of its cell's median."""
    if not prior or not prior["weight"]:
        return None
    if "areas" not in f:
        raise CheckpointError(f"{where}: no chromosome areas (extracted before the size prior existed); "
                              "rerun `chromo features`")
    if "mean" not in prior:
        raise CheckpointError(f"{where}: a size prior without its model; rerun `chromo features`")
    areas, cells = np.asarray(f["areas"], float), np.asarray(f["cells"])
    cost, known = np.zeros((len(areas), len(CLASSES))), areas > 0
    cost[known] = size_cost(relative_size(areas[known], cells[known]), prior, prior["weight"])
    return cost
