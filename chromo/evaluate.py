"""Evaluation: per-cell accuracy (eq. 8), its mean over cells (eq. 9), overall accuracy, confusion,
the paper's wrong-prediction notation, karyotype-formula accuracy, and the records of metrics.json."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from chromo import CLASSES, class_name, device, karyotype
from chromo.cell import assign_cells, assignment_cost, by_cell, predict_cell, size_costs
from chromo.data.loader import NATIVE_QUERY
from chromo.matching import (label_feature_vectors, label_redistribution, lfv_distances, neg_log_softmax,
                             predict_dcnn, predict_fvm)
from chromo.run import CheckpointError, Run

def per_cell_accuracy(pred, true, cells) -> pd.Series:
    """Eq. 8: A_c = (1 / n_c) * sum_{i in c} [pred_i = true_i], for every cell c."""
    return (pd.Series(np.asarray(pred) == np.asarray(true)).groupby(np.asarray(cells), sort=False).mean())


def mean_cell_accuracy(pred, true, cells) -> float:
    """Eq. 9: the mean of A_c over the cells."""
    return float(per_cell_accuracy(pred, true, cells).mean())


def overall_accuracy(pred, true) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(true)))


def paired_difference(a, b, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean of the per-cell differences b - a (two methods on the same cells) with a percentile bootstrap
    95% interval over cells (cells resampled with replacement, `n_boot` times, fixed seed)."""
    d = np.asarray(b, float) - np.asarray(a, float)
    if len(d) == 0:
        raise ValueError("paired_difference: no cells")
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"mean": float(d.mean()), "low": float(lo), "high": float(hi), "cells": len(d),
            "better": int((d > 0).sum()), "worse": int((d < 0).sum())}


def confusion(pred, true) -> pd.DataFrame:
    """Rows: true class, columns: predicted class, both 1..22, X, Y."""
    k = list(CLASSES)
    names = [class_name(c) for c in k]
    return pd.DataFrame(confusion_matrix(true, pred, labels=k), index=names, columns=names)


def wrong_predictions(pred, true, cells, homologue=None) -> pd.DataFrame:
    """The paper's notation (Table 3): '19-2 (21)' = the 2nd chromosome 19 of the cell taken for a 21.
    One row per cell with at least one error."""
    df = pd.DataFrame({"cell": cells, "true": true, "pred": pred})
    df["n"] = df.groupby(["cell", "true"]).cumcount() + 1 if homologue is None else np.asarray(homologue) + 1
    bad = df[df["true"] != df["pred"]]
    note = bad.apply(lambda r: f"{class_name(r.true)}-{r.n} ({class_name(r.pred)})", axis=1)
    return (bad.assign(notation=note).groupby("cell", sort=False)["notation"]
            .agg(lambda s: ", ".join(s)).rename("wrong_predictions").reset_index())


def select(pred: pd.DataFrame, method: str | None = None, query: str | None = None,
           distance: str | None = None) -> pd.DataFrame:
    """The rows of a prediction table for one method / query style / distance metric (None: any)."""
    keep = np.ones(len(pred), bool)
    for col, value in (("method", method), ("query", query), ("distance", distance)):
        if value is not None:
            keep &= (pred[col] == value).to_numpy()
    return pred[keep]


def cell_accuracy(pred: pd.DataFrame) -> pd.Series:
    """Eq. 8 on (a selection of) a prediction table: accuracy per cell."""
    return per_cell_accuracy(pred["pred"], pred["label"], pred["cell"])


def predictions(run, gamma: float = 1.0, beta: float = 40, metrics=("cosine", "euclid"),
                extra_penalty: float = 4.0, missing_penalty: float = 4.0,
                split: str = "test") -> pd.DataFrame:
    """Every method's prediction for every test chromosome, long format: one row per
    (chromosome, query, method, distance), with the cell, true label and, for LRd, the head flag. The
    assignment uses the run's relative-size prior (Run.size_prior), as `chromo classify` does."""
    run = Run(run)
    native = NATIVE_QUERY[run.settings()[1]]
    feats = {q: run.features(split, q) for q in ("ki", "mi") if run.has_features(split, q)}  # each file once
    prior = run.size_prior()
    if prior is None:
        warnings.warn(f"{run.path}: no {Run.SIZE_PRIOR} (features extracted before the size prior existed): "
                      f"the assignment is on -log p alone; `chromo features --run {run.path}` writes it",
                      stacklevel=2)
    return predictions_from(run.features("val", native), feats, native, gamma, beta, metrics,
                            extra_penalty, missing_penalty, prior, where=str(run.path))


def predictions_from(val: dict, feats: dict, native: str, gamma: float = 1.0, beta: float = 40,
                     metrics=("cosine", "euclid"), extra_penalty: float = 4.0, missing_penalty: float = 4.0,
                     size_prior: dict | None = None, where: str = "features") -> pd.DataFrame:
    """`predictions` on feature dicts (features, logits, labels, cells, paths, areas): `val` makes the LFVs
    and the FVM gallery, `feats` maps each query style to its test features; `native` is the data set's own
    style; `size_prior` (Run.size_prior) adds its cost to the assignment. Each cell goes through
    chromo.cell.predict_cell, as in `chromo classify`."""
    lfv = label_feature_vectors(val["features"], val["labels"], gamma)      # eq. 4, the same for every metric
    out = []
    for q in feats:
        t = feats[q]
        size = size_costs(t, size_prior, f"{where} ({q} features)")
        base = pd.DataFrame({"cell": t["cells"], "label": t["labels"], "path": t["paths"], "query": q})
        n = len(base)
        dcnn, assigned = np.zeros(n, int), np.zeros(n, int)
        first = {metric: np.zeros(n, int) for metric in metrics}
        dmin = {metric: np.zeros(n) for metric in metrics}
        second = {metric: np.zeros(n, int) for metric in metrics}
        head = {metric: np.zeros(n, bool) for metric in metrics}
        for _, idx in by_cell(t["cells"]):
            c = predict_cell(t["logits"][idx], t["features"][idx], {metric: lfv for metric in metrics}, beta,
                             extra_penalty, missing_penalty, None if size is None else size[idx])
            dcnn[idx], assigned[idx] = c.dcnn, c.assign
            for metric in metrics:
                first[metric][idx], dmin[metric][idx] = c.lfv[metric], c.min_distance[metric]
                second[metric][idx], head[metric][idx] = c.lrd[metric], c.head[metric]

        def add(method, pred, distance=None, **extra):
            out.append(base.assign(method=method, distance=distance, pred=np.asarray(pred, int), **extra))

        add("dcnn", dcnn)
        add("assign", assigned)
        for metric in metrics:
            add("lfv", first[metric], metric, min_distance=dmin[metric])
            add("lfv+lrd", second[metric], metric, first=first[metric], head=head[metric],
                min_distance=dmin[metric])
            if q == native:   # gallery: the validation images
                fvm_pred = predict_fvm(t["features"], val["features"], val["labels"], metric)[0]
            else:             # MI queries against the KI images of the same cell
                ki = feats[native]
                fvm_pred = predict_fvm(t["features"], ki["features"], ki["labels"], metric, t["cells"],
                                       ki["cells"])[0]
            add("fvm", fvm_pred, metric)
    return pd.concat(out, ignore_index=True)


def records(pred: pd.DataFrame, dataset: str, model: str) -> list[dict]:
    """One metrics.json record per (method, query, distance)."""
    recs = []
    keys = ["method", "query", "distance"]
    for (method, query, distance), g in pred.fillna({"distance": "-"}).groupby(keys, sort=True):
        recs.append({"dataset": dataset, "model": model, "method": method, "query": query,
                     "distance": None if distance == "-" else distance, "cells": int(g["cell"].nunique()),
                     "chromosomes": len(g),
                     "accuracy_mean_cell": mean_cell_accuracy(g["pred"], g["label"], g["cell"]),
                     "accuracy_overall": overall_accuracy(g["pred"], g["label"])})
    return recs


def karyotype_table(pred: pd.DataFrame, method: str = "assign", query: str | None = None) -> pd.DataFrame:
    """Per cell: true formula (from the labels), predicted formula (from the method's labels)."""
    g = select(pred, method, query or pred["query"].iloc[0])
    rows = []
    for cell, c in g.groupby("cell", sort=False):
        t, p = karyotype.formula(c["label"]), karyotype.formula(c["pred"])
        rows.append({"cell": cell, "chromosomes": len(c), "true_formula": t, "predicted_formula": p,
                     "abnormal": not karyotype.is_normal(t), "predicted_abnormal": not karyotype.is_normal(p),
                     "formula_correct": t == p, "accuracy": float((c["label"] == c["pred"]).mean())})
    return pd.DataFrame(rows)


def karyotype_summary(table: pd.DataFrame) -> dict:
    ab = table[table["abnormal"]]
    return {"cells": len(table), "formula_accuracy": float(table["formula_correct"].mean()),
            "abnormal_cells": int(len(ab)), "abnormal_detected": int(ab["formula_correct"].sum()),
            "abnormal_flagged": int(ab["predicted_abnormal"].sum()),
            "normal_flagged_abnormal": int((~table["abnormal"] & table["predicted_abnormal"]).sum()),
            "wrong_sex": int((table["true_formula"].map(karyotype.sex)
                              != table["predicted_formula"].map(karyotype.sex)).sum())}


def beta_sweep(run: Path, betas=range(1, 46), gamma: float = 1.0,
               metric: str = "cosine", query: str | None = None, split: str = "test") -> pd.DataFrame:
    """Per-cell accuracy after LRd for every beta (paper Fig. 12): columns cell, beta, accuracy. With
    split="val", the validation cells (whose features also make the LFVs), for choosing beta."""
    run = Run(run)
    native = NATIVE_QUERY[run.settings()[1]]
    val, t = run.features("val", native), run.features(split, query or native)
    d = lfv_distances(t["features"], *label_feature_vectors(val["features"], val["labels"], gamma),
                      metric=metric)
    rows = []
    for cell, idx in by_cell(t["cells"]):
        for b in betas:
            second = label_redistribution(d[idx], b)["second"]
            rows.append({"cell": cell, "beta": b, "accuracy": float((second == t["labels"][idx]).mean())})
    return pd.DataFrame(rows)


def best_beta(sweep: pd.DataFrame, near: float = 40) -> pd.DataFrame:
    """Per cell of a beta_sweep (Fig. 12(a)): the best accuracy, the betas that reach it (lowest, highest,
    how many) and the one of them nearest `near` (the paper's 40)."""
    rows = []
    for cell, g in sweep.groupby("cell", sort=False):
        top = g[g["accuracy"] >= g["accuracy"].max() - 1e-12]["beta"].to_numpy()
        rows.append({"cell": cell, "accuracy": float(g["accuracy"].max()), "lowest": int(top.min()),
                     "highest": int(top.max()), "betas": len(top),
                     "nearest": int(top[np.argmin(abs(top - near))])})
    return pd.DataFrame(rows)


def lrd_rounds(pred: pd.DataFrame, query: str) -> pd.DataFrame:
    """Fig. 10 per cell, for each base distance: the accuracy of the first round (nearest LFV, d_first), of
    the second (after LRd, d_second), and of the second round within LRd's head and within its tail. Columns
    (metric, round); rows the cells."""
    out = {}
    for metric in ("cosine", "euclid"):
        first = select(pred, "lfv", query, metric)
        second = select(pred, "lfv+lrd", query, metric)
        right = second["pred"] == second["label"]
        out[(metric, "first")] = cell_accuracy(first)
        out[(metric, "second")] = cell_accuracy(second)
        out[(metric, "second, head")] = right[second["head"].astype(bool)].groupby(second["cell"]).mean()
        out[(metric, "second, tail")] = right[~second["head"].astype(bool)].groupby(second["cell"]).mean()
    return pd.DataFrame(out)


def best_beta_summary(best: pd.DataFrame, n_betas: int = 45, near: int = 40) -> dict:
    """A best_beta table in a few numbers: its cells, the cells where all `n_betas` betas swept tie (beta
    does not matter there), the cells where `near` is among the best, and the median of the lowest and of
    the highest best beta."""
    return {"cells": len(best), "every beta ties": int((best["betas"] == n_betas).sum()),
            f"{near} among the best": int((best["nearest"] == near).sum()),
            "median lowest best beta": float(best["lowest"].median()),
            "median highest best beta": float(best["highest"].median())}


def case_table(pred: pd.DataFrame, method: str = "lfv+lrd", distance: str | None = "cosine") -> pd.DataFrame:
    """The paper's Tables 2 and 3 per cell: for each query style of `pred` (MI first, as the paper), the
    cell's accuracy (eq. 8) with `method` and `distance`, its number of errors and its wrong predictions in
    the paper's notation (wrong_predictions, in the order of the true class; "None" for a cell without error,
    as the paper prints). Rows: the cells, in the prediction table's order; columns chromosomes, then
    accuracy_<q>, errors_<q> and wrong_<q> per query style q."""
    out = {}
    for q in [q for q in ("mi", "ki") if (pred["query"] == q).any()]:
        p = select(pred, method, q, distance)
        right = (p["pred"] == p["label"]).groupby(p["cell"], sort=False)
        out.setdefault("chromosomes", right.size())
        out[f"accuracy_{q}"], out[f"errors_{q}"] = right.mean(), right.size() - right.sum()
        p = p.sort_values("label", kind="stable")        # stable: the homologues keep their order
        wrong = wrong_predictions(p["pred"], p["label"], p["cell"]).set_index("cell")["wrong_predictions"]
        out[f"wrong_{q}"] = wrong.reindex(right.size().index, fill_value="None")
    return pd.DataFrame(out).rename_axis("cell")


def dcnn_and_assignment(logits, labels, cells, extra_penalty: float = 4.0, missing_penalty: float = 4.0,
                        size=None) -> dict:
    """Mean per-cell accuracy (eq. 9) of the softmax argmax (DCNN) and of the karyotype assignment (its cost
    plus `size` [N, 24], the relative-size cost, where given)."""
    nll = neg_log_softmax(logits)
    assigned, _ = assign_cells(nll if size is None else nll + size, cells, extra_penalty, missing_penalty)
    return {"dcnn": mean_cell_accuracy(predict_dcnn(logits), labels, cells),
            "assign": mean_cell_accuracy(assigned, labels, cells)}


PENALTIES = (1.0, 2.0, 4.0, 8.0, 16.0)


def penalty_sweep(run: Path, penalties=PENALTIES, split: str = "val") -> pd.DataFrame:
    """The karyotype assignment's extra and missing penalties, every pair of `penalties`, scored on a split's
    native queries (the validation split by default, where the penalties are chosen), with the run's
    relative-size prior: mean per-cell accuracy (eq. 9) and the share of cells whose whole formula is right.
    Columns extra_penalty, missing_penalty, accuracy, formula_accuracy."""
    run = Run(run)
    f = run.features(split, NATIVE_QUERY[run.settings()[1]])
    cost = assignment_cost(f, run.size_prior(), str(run.path))
    rows = []
    for extra in penalties:
        for missing in penalties:
            rows.append({"extra_penalty": extra, "missing_penalty": missing,
                         **_assignment_scores(cost, f["labels"], f["cells"], extra, missing)})
    return pd.DataFrame(rows)


def _assignment_scores(cost, labels, cells, extra: float, missing: float) -> dict:
    """Mean per-cell accuracy (eq. 9) and formula accuracy of the karyotype assignment on `cost` [N, 24]."""
    got, formulas = assign_cells(cost, cells, extra, missing)
    right = [formulas[c] == karyotype.formula(labels[idx]) for c, idx in by_cell(cells)]
    return {"accuracy": mean_cell_accuracy(got, labels, cells), "formula_accuracy": float(np.mean(right))}


SIZE_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)


def size_prior_sweep(run: Path, weights=SIZE_WEIGHTS, extra_penalty: float = 4.0,
                     missing_penalty: float = 4.0,
                     split: str = "val") -> pd.DataFrame:
    """The weight of the assignment's relative-size prior (karyotype.size_cost; 0: off), each of `weights`,
    scored on every query style of a split (the validation split by default, where the weight is chosen):
    columns query, weight, accuracy (eq. 9), formula_accuracy."""
    run = Run(run)
    prior = run.size_prior()
    if prior is None or "mean" not in prior:
        raise CheckpointError(f"{run.path}: no size model in size_prior.json; rerun `chromo features --run "
                              f"{run.path}`")
    rows = []
    for q in ("ki", "mi"):
        if not run.has_features(split, q):
            continue
        f = run.features(split, q)
        nll = neg_log_softmax(f["logits"])
        for w in weights:
            size = size_costs(f, {**prior, "weight": w}, str(run.path))
            cost = nll if size is None else nll + size
            rows.append({"query": q, "weight": w,
                         **_assignment_scores(cost, f["labels"], f["cells"], extra_penalty, missing_penalty)})
    return pd.DataFrame(rows)


MI_ABLATION = {"none (KI)": (), "rotate": ("rotate",), "rotate + bend": ("rotate", "bend"),
               "rotate + bend + neighbour": ("rotate", "bend", "neighbour"),
               "rotate + bend + neighbour + optics (the MI queries)": ("rotate", "bend", "neighbour",
                                                                       "optics")}


def mi_ablation(run: Path, split: str = "test", prior: bool = True) -> pd.DataFrame:
    """The simulated MI queries built one factor at a time (data.augment.simulate_mi), each normalised as
    the run's images are, scored with the run's model (the assignment with the run's relative-size prior;
    `prior=False`: on -log p alone, as the experiments table scores): which factor costs what."""
    from chromo.data.canvas import object_areas
    from chromo.data.loader import mi_queries, prepare
    from chromo.inference import predict

    run = Run(run)
    cfg, dataset, _ = run.settings()
    net, _ = run.load_model(device())
    prior = run.size_prior() if prior else None
    s = prepare(cfg, dataset, progress=False).split(split)
    rows = []
    for name, factors in MI_ABLATION.items():
        imgs = s.images if not factors else mi_queries(s.images, cfg, factors)
        size = size_costs({"areas": object_areas(imgs), "cells": s.cells}, prior, str(run.path))
        acc = dcnn_and_assignment(predict(net, imgs, cfg)[0], s.labels, s.cells, cfg.matching.extra_penalty,
                                  cfg.matching.missing_penalty, size)
        rows.append({"factors": name, "DCNN": acc["dcnn"], "assignment": acc["assign"]})
    return pd.DataFrame(rows).set_index("factors")
