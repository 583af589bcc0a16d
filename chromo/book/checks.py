"""Chapter 14's tables, "What a person still checks": per data set and query style, the test cells fully
right, how well the assignment's confidence is calibrated against the softmax's, the review queue's curve
(a person corrects the k least sure chromosomes of each cell), and setting whole cells aside. Built on
chromo.review; the calibration is fitted on each run's validation cells, the measures on its test cells."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from chromo import karyotype, review
from chromo.cell import assignment_cost
from chromo.matching import softmax
from chromo.run import Run

# Published figures the chapter sets beside ours (their data, not ours): (what, figure, source)
ANCHORS = [
    ("chromosomes placed right without a person (commercial AI karyotyper, 2,305 chromosomes)", "82.9%",
     "ASI, 2025"),
    ("a person's time per metaphase with that software, against by hand", "about 2 min against 10-15 min",
     "ASI, 2025"),
    ("error per chromosome, all metaphases / after rejecting the 7% it could tell were bad", "3.4% / 2.6%",
     "Lundsteen et al. 1981"),
    ("per chromosome, every chromosome of a cell seeing the others, then a Hungarian assignment", "99.6%",
     "KaryoNet, 2023"),
]


def frame(run, query: str, extra_penalty: float = 4.0, missing_penalty: float = 4.0) -> tuple:
    """(the test chromosomes of one query style: cell, label, pred (the assignment), margin, runner_up,
    confidence (the margin calibrated on the validation cells), p_assigned (the softmax's probability of the
    assigned label), dcnn and p_top (the softmax's label and its probability); the assignment's cost)."""
    run = Run(run)
    prior, pen = run.size_prior(), (extra_penalty, missing_penalty)
    cal = review.calibration_for(run.features("val", query), prior, *pen)
    f = run.features("test", query)
    t = review.margins(f, prior, *pen).assign(path=f["paths"])
    p = softmax(f["logits"])
    t = t.assign(confidence=review.calibrate(t["margin"], cal), dcnn=p.argmax(1) + 1, p_top=p.max(1),
                 p_assigned=p[np.arange(len(t)), t["pred"] - 1])
    return t, assignment_cost(f, prior)


def cells_summary(t: pd.DataFrame) -> dict:
    """Per-chromosome accuracy, mean per-cell accuracy (eq. 9), the share of cells fully right, the share
    whose karyotype formula is exact, and the cells by number of wrong labels."""
    right = t["pred"] == t["label"]
    errors = review.errors_per_cell(t["pred"], t["label"], t["cell"])
    formula = [karyotype.formula(g["pred"]) == karyotype.formula(g["label"]) for _, g in t.groupby("cell")]
    return {"cells": int(t["cell"].nunique()), "chromosomes": len(t), "accuracy": float(right.mean()),
            "cell_accuracy": float(right.groupby(t["cell"]).mean().mean()),
            "cells_right": review.cells_fully_right(t["pred"], t["label"], t["cell"]),
            "formula_right": float(np.mean(formula)),
            "errors_per_cell": {int(k): int(v) for k, v in errors.value_counts().sort_index().items()}}


def calibration_summary(t: pd.DataFrame) -> dict:
    """The expected calibration error of the assignment's confidence (against the assignment's labels) and
    of the softmax's (its top probability against the DCNN's labels, and its probability of the assigned
    label against the assignment's)."""
    ece = review.expected_calibration_error
    return {"ece_assignment": ece(t["confidence"], t["pred"] == t["label"]),
            "ece_softmax": ece(t["p_top"], t["dcnn"] == t["label"]),
            "ece_softmax_assigned": ece(t["p_assigned"], t["pred"] == t["label"])}


def queue_summary(t: pd.DataFrame, cost, k: int = 2, target: float = 0.999,
                  extra_penalty: float = 4.0, missing_penalty: float = 4.0) -> tuple[pd.DataFrame, dict]:
    """The review curve (k = 0..6, with and without re-solving the cell after the corrections) of the queue
    ordered by the assignment's margin and by the softmax's probability of the assigned label; the
    corrections per cell a `target` accuracy takes; the errors found among the first `k` flags of each."""
    args = (t["pred"], t["label"], t["cell"])
    curves, out = [], {}
    for name, score in (("assignment", t["margin"]), ("softmax", t["p_assigned"])):
        curves.append(review.review_curve(score, *args, cost=cost, extra_penalty=extra_penalty,
                                          missing_penalty=missing_penalty).assign(confidence=name))
        needed = review.k_needed(score, *args, target=target, cost=cost, extra_penalty=extra_penalty,
                                 missing_penalty=missing_penalty)
        out[f"k_needed_{name}"] = needed["k"]
        out[f"flags_{name}"] = review.flag_precision(score, *args, k)
    return pd.concat(curves, ignore_index=True), out


def queue_record(curve: pd.DataFrame, out: dict) -> dict:
    """queue_summary's results as metrics.json keeps them: the corrections per cell for the target and the
    first flags' hits of each queue, and each curve (k, per-chromosome accuracy, cells all right) by queue
    and by whether the cell is re-solved after the corrections."""
    record = {key: value if isinstance(value, dict) else (None if value is None else int(value))
              for key, value in out.items()}
    for (name, reassign), c in curve.sort_values("k").groupby(["confidence", "reassign"]):
        record[f"curve_{name}_{'resolved' if reassign else 'corrected'}"] = {
            column: c[column].tolist() for column in ("k", "accuracy", "cells_right")}
    return record


def set_aside(t: pd.DataFrame, threshold: float) -> dict:
    """The cells whose expected number of wrong labels (review.expected_errors) reaches `threshold`: the
    share set aside and the accuracy of the cells kept (`chromo classify` says so of such a cell)."""
    expected = t.groupby("cell", sort=False)["confidence"].agg(review.expected_errors)
    kept = t[t["cell"].map(expected < threshold)]
    return {"threshold": threshold, "set_aside": float((expected >= threshold).mean()),
            "accuracy_kept": float((kept["pred"] == kept["label"]).mean()) if len(kept) else float("nan"),
            "cells_right_kept": review.cells_fully_right(kept["pred"], kept["label"], kept["cell"])
            if len(kept) else float("nan")}


def reliability_figure(curves: dict):
    """Reliability diagrams, one panel per set of test cells: each confidence's bins (review.reliability),
    mean confidence against the share right; the diagonal is perfect calibration."""
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * max(len(curves), 1), 3.1), squeeze=False)
    for ax, (name, tables) in zip(axes[0], curves.items()):
        for label, t in tables.items():
            t = t.dropna(subset=["accuracy"])
            ax.plot(t["confidence"], t["accuracy"], marker="o", ms=3, label=label)
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        ax.set(title=name, xlabel="mean confidence in the bin", xlim=(0, 1), ylim=(0, 1))
    axes[0, 0].set_ylabel("share right")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def review_figure(queues: dict):
    """Accuracy per chromosome against the corrections per cell (k), one panel per set of test cells: the
    queue by the assignment's margin and by the softmax, corrected only and re-solved."""
    fig, axes = plt.subplots(1, len(queues), figsize=(3.2 * max(len(queues), 1), 3.1), squeeze=False)
    for ax, (name, c) in zip(axes[0], queues.items()):
        for (by, reassign), g in c.groupby(["confidence", "reassign"]):
            ax.plot(g["k"], g["accuracy"], marker="o", ms=3, ls="-" if reassign else ":",
                    label=f"{by}, {'re-solved' if reassign else 'corrected only'}")
        ax.set(title=name, xlabel="chromosomes corrected per cell (k)")
    axes[0, 0].set_ylabel("accuracy per chromosome")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
