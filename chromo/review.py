"""Which chromosomes a person should check (beyond the paper): confidence, its calibration, and review.

A chromosome's confidence is a score that is higher when its label is more likely right, typically the
assignment's min-marginal (`karyotype.assignment_margins`: what the cell's optimum pays to change that
label). `fit_calibration` turns a score into a probability of being right on validation cells; the
reliability table and the ECE say how well it does on test cells. A cell's review queue lists its
chromosomes least confident first; `review_curve` scores the cells after a person has corrected the first
k of each queue, `k_needed` says how many corrections a target accuracy takes, `flag_precision` how many of
the flagged chromosomes are errors, and `rejection_curve` what setting aside the worst cells gains.
Labels are 1..24; `labels` are the true labels, `pred` the predicted ones, `cells` the cell of each
chromosome, as in chromo.evaluate.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from chromo import N_CLASSES
from chromo.cell import assignment_cost, by_cell
from chromo.karyotype import assign_karyotype, assignment_margins

FIXED = 1e9   # cost of any other label for a corrected chromosome: above assign_karyotype's 1e6 for +inf


# --- input checks --------------------------------------------------------------------------------------

def _check(confidence, pred, labels, cells) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four per-chromosome arrays, refused when their lengths differ, when empty or with a bad value."""
    confidence, pred = np.asarray(confidence, float), np.asarray(pred)
    labels, cells = np.asarray(labels), np.asarray(cells)
    lengths = {"confidence": len(confidence), "pred": len(pred), "labels": len(labels), "cells": len(cells)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"one value per chromosome expected, got lengths {lengths}")
    if len(cells) == 0:
        raise ValueError("no chromosomes: every cell is empty")
    if np.isnan(confidence).any():
        raise ValueError(f"{int(np.isnan(confidence).sum())} confidence(s) are NaN")
    for name, x in (("pred", pred), ("labels", labels)):
        if not np.isin(x, np.arange(1, N_CLASSES + 1)).all():
            raise ValueError(f"{name}: labels must be classes 1..{N_CLASSES}")
    return confidence, pred.astype(int), labels.astype(int), cells


def _by_cell(cells) -> list[np.ndarray]:
    """The indices of each cell's chromosomes, cells in order of first appearance (cell.by_cell)."""
    return [idx for _, idx in by_cell(cells)]


def expected_errors(probability) -> float:
    """A cell's expected number of wrong labels: the sum of 1 - p over its chromosomes (p: each label's
    calibrated probability of being right)."""
    return float(np.sum(1 - np.asarray(probability, float)))


def _scores(right, cells) -> dict:
    """Per-chromosome accuracy over all chromosomes, mean per-cell accuracy (eq. 9), share of cells all
    right."""
    per_cell = pd.Series(right).groupby(pd.factorize(np.asarray(cells))[0]).mean()
    return {"accuracy": float(np.mean(right)), "cell_accuracy": float(per_cell.mean()),
            "cells_right": float((per_cell == 1).mean())}


# --- the assignment's margins over a split, and their calibration -----------------------------------------

def margins(f: dict, size_prior: dict | None = None, extra_penalty: float = 4.0,
            missing_penalty: float = 4.0) -> pd.DataFrame:
    """The assignment of every cell of a feature dict (logits, labels, cells, areas; chromo.run.Run.features)
    on -log p plus the relative-size cost (cell.size_costs), with each label's margin and runner-up
    (karyotype.assignment_margins): columns cell, label, pred, margin, runner_up."""
    cost = assignment_cost(f, size_prior)
    out = pd.DataFrame({"cell": f["cells"], "label": f["labels"], "pred": 0, "margin": 0.0, "runner_up": 0})
    for _, idx in by_cell(f["cells"]):
        a = assignment_margins(cost[idx], extra_penalty, missing_penalty)
        out.loc[idx, ["pred", "margin", "runner_up"]] = np.c_[a["labels"], a["margin"], a["runner_up"]]
    return out.astype({"pred": int, "runner_up": int})


def calibration_for(val: dict, size_prior: dict | None = None, extra_penalty: float = 4.0,
                    missing_penalty: float = 4.0) -> dict:
    """fit_calibration of the assignment's margins on a run's validation features (one query style). A
    validation split without a wrong label (or without a right one) gets one pseudo-chromosome of the other
    kind at the least sure margin (0), so the fit exists and stays short of certainty."""
    m = margins(val, size_prior, extra_penalty, missing_penalty)
    score, right = m["margin"].to_numpy(), (m["pred"] == m["label"]).to_numpy()
    if right.all() or not right.any():
        score, right = np.append(score, 0.0), np.append(right, not right[0])
    return fit_calibration(score, right)


# --- calibration ---------------------------------------------------------------------------------------

def fit_calibration(score, correct, method: str = "isotonic") -> dict:
    """The map from a confidence score to the probability that the label is right, fitted on validation
    chromosomes (`correct` [N] bool); a JSON-serialisable dict for `calibrate`.

    "isotonic" (the default): the increasing step function closest to `correct` in squared error (sklearn's
    IsotonicRegression), stored as its thresholds and interpolated linearly, constant beyond them. It assumes
    only that a larger score is not less likely right: the assignment's margin has a point mass at 0 (ties)
    and a long tail whose link to the error rate no fixed curve is known to follow, and a validation split
    holds thousands of chromosomes, enough for a non-parametric fit. Its output is kept within
    [1 / (N + 2), 1 - 1 / (N + 2)]: N validation chromosomes cannot support certainty.
    "logistic": p = sigmoid(a + b log1p(score)) for scores >= 0 (two parameters): smoother, for a
    validation split with few errors, where the isotonic steps would follow single chromosomes.
    """
    score, correct = np.asarray(score, float), np.asarray(correct)
    if len(score) != len(correct):
        raise ValueError(f"{len(score)} scores for {len(correct)} correctness values")
    if not np.isfinite(score).all():
        raise ValueError("scores must be finite")
    if not np.isin(correct, (0, 1)).all():
        raise ValueError("correct must be boolean (or 0 / 1)")
    if len(np.unique(correct)) < 2:
        raise ValueError("calibration needs both right and wrong chromosomes")
    bounds = [1 / (len(score) + 2), 1 - 1 / (len(score) + 2)]
    if method == "isotonic":
        iso = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0, y_max=1)
        iso.fit(score, correct.astype(float))
        return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist(),
                "bounds": bounds}
    if method == "logistic":
        if (score < 0).any():
            raise ValueError("the logistic calibration takes scores >= 0 (it fits on log1p(score))")
        fit = LogisticRegression(C=1e6).fit(np.log1p(score)[:, None], correct.astype(int))
        return {"method": "logistic", "coef": float(fit.coef_[0, 0]), "intercept": float(fit.intercept_[0]),
                "bounds": bounds}
    raise ValueError(f"calibration method {method!r}: 'isotonic' or 'logistic'")


def calibrate(score, model: dict) -> np.ndarray:
    """The probability [N] that each label is right, from its score and a `fit_calibration` model."""
    score = np.asarray(score, float)
    if model["method"] == "isotonic":
        p = np.interp(score, model["x"], model["y"])
    elif model["method"] == "logistic":
        if (score < 0).any():
            raise ValueError("the logistic calibration takes scores >= 0")
        p = 1 / (1 + np.exp(-(model["intercept"] + model["coef"] * np.log1p(score))))
    else:
        raise ValueError(f"calibration method {model['method']!r}: 'isotonic' or 'logistic'")
    return np.clip(p, *model["bounds"])


def reliability(confidence, correct, bins: int = 15) -> pd.DataFrame:
    """The reliability diagram's table: `bins` equal-width bins of [0, 1] (the last one closed), each with
    its bounds, the mean confidence and the accuracy of its chromosomes (NaN when empty) and their count."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    if len(confidence) != len(correct) or len(confidence) == 0:
        raise ValueError(f"{len(confidence)} confidences for {len(correct)} correctness values (none empty)")
    if not ((confidence >= 0) & (confidence <= 1)).all():
        raise ValueError("confidences must be probabilities in [0, 1]: calibrate the score first")
    b = np.minimum((confidence * bins).astype(int), bins - 1)
    df = pd.DataFrame({"bin": b, "confidence": confidence, "accuracy": correct})
    table = df.groupby("bin").agg(confidence=("confidence", "mean"), accuracy=("accuracy", "mean"),
                                  count=("accuracy", "size")).reindex(range(bins))
    table["count"] = table["count"].fillna(0).astype(int)
    table.insert(0, "low", np.arange(bins) / bins)
    table.insert(1, "high", np.arange(1, bins + 1) / bins)
    return table.rename_axis("bin").reset_index()


def expected_calibration_error(confidence, correct, bins: int = 15) -> float:
    """ECE: sum over equal-width bins of (share of chromosomes in the bin) * |accuracy - mean confidence|."""
    t = reliability(confidence, correct, bins)
    t = t[t["count"] > 0]
    return float((t["count"] * (t["accuracy"] - t["confidence"]).abs()).sum() / t["count"].sum())


# --- review --------------------------------------------------------------------------------------------

def review_queue(confidence) -> np.ndarray:
    """The positions of one cell's chromosomes, least confident first; ties keep the input order."""
    confidence = np.asarray(confidence, float)
    if len(confidence) == 0:
        raise ValueError("an empty cell has no review queue")
    return np.argsort(confidence, kind="stable")


def reviewed(confidence, pred, labels, cells, k: int, cost=None, extra_penalty: float = 4.0,
             missing_penalty: float = 4.0) -> np.ndarray:
    """The labels [N] after a person corrects the k least confident chromosomes of every cell (all of a cell
    with fewer): those take their true label. With `cost` [N, 24] (the assignment's, of which `pred` is the
    optimum) the rest of each cell is re-assigned with the corrected chromosomes fixed to their true label,
    so correcting one of a swapped pair also repairs the other."""
    confidence, pred, labels, cells = _check(confidence, pred, labels, cells)
    if cost is not None and np.shape(cost) != (len(pred), N_CLASSES):
        raise ValueError(f"cost must be [{len(pred)}, {N_CLASSES}], got {np.shape(cost)}")
    cost = None if cost is None else np.asarray(cost, float)
    out = pred.copy()
    for idx in _by_cell(cells):
        rows = review_queue(confidence[idx])[:k]           # positions in the cell
        checked, true = idx[rows], labels[idx[rows]] - 1
        if cost is not None:
            c = cost[idx]
            own = c[rows, true]
            c[rows] = FIXED                                     # every other label barred
            c[rows, true] = own
            out[idx] = assign_karyotype(c, extra_penalty, missing_penalty)["labels"]
        out[checked] = labels[checked]
    return out


def review_curve(confidence, pred, labels, cells, ks=range(7), cost=None, extra_penalty: float = 4.0,
                 missing_penalty: float = 4.0) -> pd.DataFrame:
    """For each k of `ks`, the cells after a person corrects the k least confident chromosomes of each cell
    (`reviewed`): per-chromosome accuracy over all chromosomes, mean per-cell accuracy (eq. 9) and the share
    of cells all right, with `checked`, the chromosomes checked per cell on average. Rows with reassign
    False only correct; with `cost` given, rows with reassign True also re-solve each cell's assignment
    around the corrections (at k = 0 that is the assignment of `cost` itself)."""
    _, _, labels, cells = _check(confidence, pred, labels, cells)
    sizes = np.array([len(idx) for idx in _by_cell(cells)])
    rows = []
    for reassign in (False, True) if cost is not None else (False,):
        for k in ks:
            got = reviewed(confidence, pred, labels, cells, k, cost if reassign else None, extra_penalty,
                           missing_penalty)
            rows.append({"k": k, "reassign": reassign, "checked": float(np.minimum(sizes, k).mean()),
                         **_scores(got == labels, cells)})
    return pd.DataFrame(rows)


def k_needed(confidence, pred, labels, cells, target: float = 0.999, cost=None, extra_penalty: float = 4.0,
             missing_penalty: float = 4.0) -> dict:
    """How many corrections per cell a target accuracy takes. "per_cell" (Series by cell): the smallest k
    for which that cell's accuracy reaches `target` (so for a 46-chromosome cell and target 0.999, the
    1-based position in its queue of its last error); "k": the smallest k, the same for every cell, for
    which the per-chromosome accuracy over all cells reaches `target`. With `cost`, re-solved as in
    `reviewed`."""
    confidence, pred, labels, cells = _check(confidence, pred, labels, cells)
    if not 0 < target <= 1:
        raise ValueError(f"target accuracy {target}: in (0, 1]")
    groups = _by_cell(cells)
    per_cell, overall = np.full(len(groups), -1), None
    for k in range(max(len(idx) for idx in groups) + 1):      # k = largest cell: every chromosome right
        right = reviewed(confidence, pred, labels, cells, k, cost, extra_penalty, missing_penalty) == labels
        for j, idx in enumerate(groups):
            if per_cell[j] < 0 and right[idx].mean() >= target:
                per_cell[j] = k
        if overall is None and right.mean() >= target:
            overall = k
        if overall is not None and (per_cell >= 0).all():
            break
    return {"per_cell": pd.Series(per_cell, index=pd.unique(cells), name="k"), "k": overall}


def flag_precision(confidence, pred, labels, cells, k: int) -> dict:
    """The k least confident chromosomes of each cell flagged: "precision", the share of the flagged that
    are errors; "recall", the share of all errors that are flagged (NaN without errors); their counts.
    Two confidences compare fairly here: they flag the same number of chromosomes."""
    confidence, pred, labels, cells = _check(confidence, pred, labels, cells)
    flagged = np.zeros(len(pred), bool)
    for idx in _by_cell(cells):
        flagged[idx[review_queue(confidence[idx])[:k]]] = True
    wrong = pred != labels
    hits = int((flagged & wrong).sum())
    return {"precision": float(hits / flagged.sum()) if flagged.any() else float("nan"),
            "recall": float(hits / wrong.sum()) if wrong.any() else float("nan"),
            "flagged": int(flagged.sum()), "errors": int(wrong.sum()), "flagged_errors": hits}


def rejection_curve(probability, pred, labels, cells,
                    fractions=(0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)) -> pd.DataFrame:
    """Cells set aside worst first, by their expected number of errors (the sum of 1 - p over their
    chromosomes, p the calibrated probability of being right; ties: first-seen cell kept), and the cells
    kept scored. For each fraction f < 1, floor(f * cells) are set aside: columns fraction (asked),
    rejected (share of cells set aside), cells_kept, accuracy, cell_accuracy (eq. 9), cells_right."""
    probability, pred, labels, cells = _check(probability, pred, labels, cells)
    if not ((probability >= 0) & (probability <= 1)).all():
        raise ValueError("probabilities must be in [0, 1]: calibrate the score first")
    codes, _ = pd.factorize(cells)
    expected = np.array([expected_errors(probability[idx]) for idx in _by_cell(cells)])
    order = np.argsort(-expected, kind="stable")                      # worst first
    rows = []
    for f in fractions:
        if not 0 <= f < 1:
            raise ValueError(f"fraction {f}: set aside a share in [0, 1)")
        n_out = int(np.floor(f * len(expected) + 1e-9))
        keep = ~np.isin(codes, order[:n_out])
        rows.append({"fraction": f, "rejected": n_out / len(expected), "cells_kept": len(expected) - n_out,
                     **_scores(pred[keep] == labels[keep], codes[keep])})
    return pd.DataFrame(rows)


def errors_per_cell(pred, labels, cells) -> pd.Series:
    """The number of wrong labels of each cell (index: cell, in order of first appearance)."""
    _, pred, labels, cells = _check(np.zeros(len(pred)), pred, labels, cells)
    return pd.Series(pred != labels).groupby(cells, sort=False).sum().astype(int).rename("errors")


def cells_fully_right(pred, labels, cells) -> float:
    """The share of cells whose every chromosome is labelled right."""
    return float((errors_per_cell(pred, labels, cells) == 0).mean())
