"""Cell context (chromo.lab.context) measured on VALIDATION cells: does a learned layer that lets each
chromosome see its cell help the karyotype assignment, and does a homologue-pairing term?

    python -m chromo.lab.context_study --run runs/cpu/pki3/eresnet-u1c0 [--test]

Prints, for every query style of the run's validation split: the design alternatives (each trained on the
run's training cells with each training set), the ablation (no context; context without the size cost;
context with it), the pairing sweep, and the training seconds and inference ms per cell of each layer on this
machine. Scores: DCNN (softmax argmax) and assignment accuracy as the mean per-cell accuracy (eq. 9), with
the number of wrong chromosomes, and the share of cells fully right. `--test` adds the final check of the
setting chosen on validation (`--choose`), scored once on the test split. The training feature files are
extracted once where missing (chromo.inference.extract_features; slow on a CPU).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from chromo import config
from chromo.io import atomic_write_text
from chromo.lab import context
from chromo.cell import assign_cells, by_cell, size_costs
from chromo.evaluate import mean_cell_accuracy
from chromo.inference import extract_features
from chromo.matching import neg_log_softmax, predict_dcnn
from chromo.run import Run

#: the alternatives: name -> keyword arguments of context.fit ("prior" is filled in with the run's size prior)
VARIANTS = {
    "linear, no context": {"kind": "linear"},
    "cell-normalised features + linear": {"kind": "cellnorm"},
    "attention, 1 layer": {"kind": "attention"},
    "attention, 2 layers": {"kind": "attention", "layers": 2},
    "attention on log p + size only": {"kind": "attention", "features": False},
    "attention, assignment loss": {"kind": "attention", "loss": "assign"},
}
#: training sets per dataset: name -> (split, query) feature files of training cells
TRAINING = {"pki3": {"train-every4 KI": [("train-every4", "ki")],
                     "train KI + MI": [("train", "ki"), ("train", "mi")]},
            "bioimlab": {"train MI": [("train", "mi")]}}
QUERIES = {"pki3": ("ki", "mi"), "bioimlab": ("mi",)}
PAIRING_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)


def scores(f: dict, logits, size=None) -> dict:
    """DCNN and assignment accuracy (eq. 9: mean per-cell accuracy) of `logits` on a feature dict's cells, the
    assignment on -log softmax plus `size` [N, 24] where given; with the wrong count and the share of cells
    whose chromosomes are all right."""
    y, cells = np.asarray(f["labels"]), np.asarray(f["cells"])
    cost = neg_log_softmax(logits) + (0 if size is None else size)
    got, _ = assign_cells(cost, cells)
    right = pd.Series(got == y).groupby(cells).all()
    return {"DCNN": mean_cell_accuracy(predict_dcnn(logits), y, cells),
            "assignment": mean_cell_accuracy(got, y, cells), "wrong": int((got != y).sum()),
            "cells right": float(right.mean())}


def training_set(run: Run, dataset: str, name: str) -> list[dict]:
    """The feature dicts of one training set of TRAINING, extracted first where the run lacks them."""
    out = []
    for split, query in TRAINING[dataset][name]:
        if not run.has_features(split, query):
            every = int(split.split("every")[1]) if "every" in split else 1
            extract_features(run, "train", progress=False, queries=(query,), cell_every=every)
        out.append(run.features(split, query))
    return out


def ms_per_cell(model, f: dict, repeat: int = 3) -> float:
    """Inference milliseconds per cell of context.apply on a feature dict (best of `repeat`)."""
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        context.apply(model, f)
        best = min(best, time.perf_counter() - t)
    return 1000 * best / len(np.unique(f["cells"]))


def alternatives(run: Run, split: str = "val", epochs: int = 20, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Every VARIANTS x training set of the run's dataset, scored on `split` for each query style with the
    size cost (as the assignment runs): one row per (training, variant, query); and the fitted models."""
    _, dataset, _ = run.settings()
    prior, rows, models = run.size_prior(), [], {}
    evals = {q: run.features(split, q) for q in QUERIES[dataset]}
    for data in TRAINING[dataset]:
        train = training_set(run, dataset, data)
        for name, kw in VARIANTS.items():
            t = time.perf_counter()
            model, _ = context.fit(train, epochs=epochs, seed=seed, prior=prior, **kw)
            secs, models[data, name] = time.perf_counter() - t, model
            for q, f in evals.items():
                rows.append({"training": data, "variant": name, "query": q, "train s": secs,
                             "ms/cell": ms_per_cell(model, f),
                             **scores(f, context.apply(model, f), size_costs(f, prior))})
    return pd.DataFrame(rows), models


def ablation(run: Run, model, split: str = "val") -> pd.DataFrame:
    """No context / no context with the size cost (the current assignment) / context without the size cost /
    context with it, for each query style of `split`."""
    _, dataset, _ = run.settings()
    rows = []
    for q in QUERIES[dataset]:
        f = run.features(split, q)
        size, new = size_costs(f, run.size_prior()), context.apply(model, f)
        for name, logits, s in (("no context, no size", f["logits"], None),
                                ("no context + size", f["logits"], size),
                                ("context, no size", new, None), ("context + size", new, size)):
            rows.append({"query": q, "setting": name, **scores(f, logits, s)})
    return pd.DataFrame(rows)


def pair_swaps(cost, labels, features, weight: float, max_swaps: int = 100) -> np.ndarray:
    """The assignment's labels of ONE cell re-paired with a homologue-pairing term: total =
    sum_i cost_i(label_i) + weight * sum over classes of (1 - cos) between each two chromosomes sharing the
    class (features standardised over the cell, L2-normalised), lowered greedily by swapping two chromosomes'
    labels (best swap first). Swaps keep the counts, so the formula and the slot penalties stay the
    assignment's."""
    x = np.asarray(features, float)
    x = (x - x.mean(0)) / (x.std(0) + 1e-2)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    dist, lab, c = 1 - x @ x.T, np.asarray(labels).copy(), np.asarray(cost, float)
    np.fill_diagonal(dist, 0.0)
    for _ in range(max_swaps):
        g = dist @ (lab[:, None] == np.arange(1, c.shape[1] + 1)[None]).astype(float)  # [n, 24] to each class
        k = lab - 1
        unary = c[:, k].T + c[:, k] - c[np.arange(len(k)), k][:, None] - c[np.arange(len(k)), k][None]
        pair = (g[:, k].T - g[np.arange(len(k)), k][:, None] + g[:, k] - g[np.arange(len(k)), k][None]
                - 2 * dist)                      # [a, b]: a takes b's class and b a's
        delta = unary + weight * pair
        delta[lab[:, None] == lab[None]] = np.inf
        a, b = np.unravel_index(np.argmin(delta), delta.shape)
        if delta[a, b] >= -1e-9:
            break
        lab[a], lab[b] = lab[b], lab[a]
    return lab


def pairing(run: Run, split: str = "val", weights=PAIRING_WEIGHTS) -> pd.DataFrame:
    """The assignment (with the run's size cost) re-paired by pair_swaps at each pairing weight (0: the
    assignment itself), for each query style of `split`: accuracy (eq. 9), wrong count, cells right; and how
    often a chromosome's nearest other chromosome of its cell is its homologue, by features (cosine, cell-
    standardised) and by class probabilities: whether the features carry pairing beyond the softmax."""
    _, dataset, _ = run.settings()
    rows = []
    for q in QUERIES[dataset]:
        f = run.features(split, q)
        y, cells = np.asarray(f["labels"]), np.asarray(f["cells"])
        cost = neg_log_softmax(f["logits"]) + _size(run, f)
        base, _ = assign_cells(cost, cells)
        near = {"features": _nearest_is_homologue(f["features"], y, cells, standardise=True),
                "probabilities": _nearest_is_homologue(np.exp(-neg_log_softmax(f["logits"])), y, cells)}
        for w in weights:
            got = base.copy()
            for _, idx in by_cell(cells):
                got[idx] = pair_swaps(cost[idx], base[idx], f["features"][idx], w)
            right = pd.Series(got == y).groupby(cells).all()
            rows.append({"query": q, "pairing weight": w, "assignment": mean_cell_accuracy(got, y, cells),
                         "wrong": int((got != y).sum()), "cells right": float(right.mean()),
                         "nearest is homologue (features)": near["features"],
                         "nearest is homologue (probabilities)": near["probabilities"]})
    return pd.DataFrame(rows)


def _nearest_is_homologue(x, labels, cells, standardise: bool = False) -> float:
    """Share of chromosomes whose nearest other chromosome of the same cell (cosine) has the same class."""
    hits = []
    for _, idx in by_cell(cells):
        v = np.asarray(x[idx], float)
        v = (v - v.mean(0)) / (v.std(0) + 1e-2) if standardise else v
        v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-12
        s = v @ v.T
        np.fill_diagonal(s, -np.inf)
        hits += list(labels[idx][s.argmax(1)] == labels[idx])
    return float(np.mean(hits))


def choose(table: pd.DataFrame, spread: pd.DataFrame, baseline_wrong: int) -> tuple[str, str] | None:
    """The (training set, variant) with the fewest wrong chromosomes over the validation queries, adopted only
    where it has fewer than the assignment without context (`baseline_wrong`) with every seed of `spread`
    (seed_spread of that layer, blend 1): a gain within the seeds' spread is noise. None: the layer is off."""
    best = table.groupby(["training", "variant"], sort=False)["wrong"].sum().idxmin()
    per_seed = spread[spread["blend"] == 1.0].groupby("seed")["wrong"].sum()
    return best if per_seed.max() < baseline_wrong else None


def seed_spread(run: Run, training: str, variant: str, seeds=(0, 1, 2), blends=(0.5, 1.0), split: str = "val",
                epochs: int = 20) -> pd.DataFrame:
    """How much of a layer's effect is its seed: the layer refitted with each seed, its wrong count (and
    DCNN accuracy, eq. 9) on each query style of `split` with the size cost, the logits blended as
    logits + b * delta for each b of `blends` (1: the layer as it is)."""
    _, dataset, _ = run.settings()
    train, rows = training_set(run, dataset, training), []
    for seed in seeds:
        model, _ = context.fit(train, epochs=epochs, seed=seed, prior=run.size_prior(), **VARIANTS[variant])
        for q in QUERIES[dataset]:
            f = run.features(split, q)
            delta, size = context.apply(model, f) - f["logits"], size_costs(f, run.size_prior())
            for b in blends:
                rows.append({"seed": seed, "query": q, "blend": b,
                             **scores(f, f["logits"] + b * delta, size)})
    return pd.DataFrame(rows)


def error_cells(run: Run, split: str = "val", top: int = 5) -> pd.DataFrame:
    """Where the current assignment's errors lie: the `top` cells with the most wrong chromosomes per query
    style of `split`, with their size, the formula of their true labels and the assigned one."""
    from chromo.karyotype import formula

    _, dataset, _ = run.settings()
    rows = []
    for q in QUERIES[dataset]:
        f = run.features(split, q)
        y = np.asarray(f["labels"])
        got, formulas = assign_cells(neg_log_softmax(f["logits"]) + _size(run, f), f["cells"])
        for c, idx in by_cell(f["cells"]):
            rows.append({"query": q, "cell": c, "wrong": int((got[idx] != y[idx]).sum()), "of": len(idx),
                         "true formula": formula(y[idx]), "assigned": formulas[c]})
    table = pd.DataFrame(rows).sort_values(["query", "wrong"], ascending=[True, False], kind="stable")
    return table.groupby("query").head(top).query("wrong > 0")


def _size(run: Run, f: dict):
    """The run's size cost of a feature dict, 0 without a prior."""
    size = size_costs(f, run.size_prior())
    return 0 if size is None else size


def _baseline(run: Run, split: str) -> pd.DataFrame:
    """The current assignment (no context, the run's size cost) on each query style of `split`."""
    _, dataset, _ = run.settings()
    rows = []
    for q in QUERIES[dataset]:
        f = run.features(split, q)
        rows.append({"query": q, **scores(f, f["logits"], size_costs(f, run.size_prior()))})
    return pd.DataFrame(rows)


def _report(run: Run, epochs: int) -> tuple[dict, tuple, tuple | None, dict]:
    """Prints the validation tables; returns (the fitted models, the best layer, the chosen one or None,
    {name: table} for --record)."""
    tables = {"baseline": _baseline(run, "val"), "errors": error_cells(run, "val")}
    tables["alternatives"], models = alternatives(run, "val", epochs)
    best = tables["alternatives"].groupby(["training", "variant"], sort=False)["wrong"].sum().idxmin()
    tables["ablation"] = ablation(run, models[best], "val")
    tables["spread"] = seed_spread(run, *best, epochs=epochs)
    chosen = choose(tables["alternatives"], tables["spread"], int(tables["baseline"]["wrong"].sum()))
    tables["pairing"] = pairing(run, "val")
    for name, what in (("baseline", f"Validation cells of {run.path}, no context (the current assignment)"),
                       ("errors", "Where its errors lie (validation)"),
                       ("alternatives", f"Design alternatives (validation, assignment with the size cost, "
                                        f"{epochs} epochs)"),
                       ("ablation",
                        f"Ablation of the best layer on validation ({best[1]}, trained on {best[0]})"),
                       ("spread", "Its seed spread (validation; blend b: logits + b * delta)"),
                       ("pairing", "Homologue pairing (validation)")):
        print(f"{what}:\n{tables[name].to_string(index=False)}\n")
    off = "layer off (no layer has fewer wrong chromosomes than the assignment without context, every seed)"
    print(f"Chosen on validation: {off if chosen is None else chosen}\n")
    return models, best, chosen, tables


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chromo.lab.context_study", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a trained run directory, e.g. runs/cpu/pki3/eresnet-u1c0")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--test", action="store_true",
                    help="the final check on the test split (once, at the end)")
    ap.add_argument("--save", action="store_true", help="write the chosen layer as the run's context.pt")
    ap.add_argument("--record", action="store_true", help="write the validation tables to book/results/cpu/"
                    "context/<dataset>-<table>.csv, which the book's chapter 14 shows")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)                        # one core: what a `chromo classify` cell gets
    pd.set_option("display.width", 200)
    pd.set_option("display.float_format", "{:.4f}".format)
    run = Run(args.run)
    models, best, chosen, tables = _report(run, args.epochs)
    if args.record:
        folder = config.load("cpu").results() / "context"
        for name, t in tables.items():
            atomic_write_text(folder / f"{run.settings()[1]}-{name}.csv", t.to_csv(index=False))
        print(f"Recorded in {folder}")
    if args.save and chosen is not None:
        print(f"Written: {context.save(models[chosen], run.path)}")
    if args.test:
        print("Final check on the test split: the setting chosen on validation"
              f"{'' if chosen else ' (no layer)'}, and the best layer beside it for information:")
        print(_baseline(run, "test").to_string(index=False))
        print(ablation(run, models[best], "test").to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
