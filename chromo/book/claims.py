"""The paper's claims, one by one, tested on this profile's runs: paired per-cell differences (eq. 8) with
bootstrap 95% intervals over cells, and a verdict.

A verdict reads the interval of the difference "claimed better minus claimed worse": above zero, the claim
holds here; below zero, it does not; across zero, we cannot tell with these cells; a claim the profile's runs
cannot test keeps its row, verdict NOT_TESTED and the reason as its note. Every interval is over the cells
of ONE trained model per method: it does not include the seed-to-seed spread of training, which chapter 12
states beside it for scale (recognition.yardstick). The baselines are compared on the test cells with the
EResNet trained on their budget (chromo.lab.baselines; each baseline's learning rate chosen on the validation
cells). The paper's own evidence for each claim is quoted from chromo.book.paper. Also chapter 12's claims as
shown and read (shown, evidence_table, summary, favours, verdict_counts, reading).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from chromo import PAPER_MODEL
from chromo.book import paper
from chromo.data.loader import NATIVE_QUERY
from chromo.evaluate import beta_sweep, paired_difference, per_cell_accuracy, predictions
from chromo.run import Run

QUERY_NAME = {"ki": "karyogram cuts (KI)", "mi": "microscope cuts (MI)"}
NOT_TESTED = "not tested"   # the verdict of a claim this profile's runs cannot test (its note says why)
BASELINE_NAME = {"alexnet": "AlexNet", "vgg16": "Vgg16", "resnet50": "ResNet50"}
#: the claims, by key, as the table words them
CLAIMS = {"lfv": "LFV matching (with LRd) beats the DCNN's softmax",
          "lrd": "Label Redistribution improves LFV matching",
          "cosine": "the cosine base distance beats the Euclidean one",
          "mi": "microscope images are harder than karyotype images",
          "beta": "beta = 40 of 46 is the split to use",
          "baseline": "EResNet beats the baselines",
          "variant": "u1c0 is the best Extended Block variant"}


TOL = 1e-12    # an interval end within this of zero is zero: a mean of per-cell differences in floats


def verdict(stat: dict) -> str:
    """holds / does not hold / cannot tell, from the 95% interval of (claimed better - claimed worse); an end
    within TOL of zero counts as zero (the bootstrap's 1.9e-18 is a zero, not a win)."""
    if stat["low"] > TOL:
        return "holds"
    if stat["high"] < -TOL:
        return "does not hold"
    return "cannot tell"


_TABLES = {"Table 1": paper.table1, "Table 2": paper.table2, "Table 4": paper.table4, "Fig. 9": paper.fig9,
           "Fig. 10": paper.fig10}


def _pct(where: str, row, column) -> str:
    return paper.pct(_TABLES[where]().loc[row, column])


def evidence() -> dict:
    """The paper's evidence for each claim, with its numbers, as the paper prints them."""
    p = _pct
    t1 = {c: p("Table 1", "EResNet", c) for c in paper.COLUMNS}
    f9 = {(r, c): p("Fig. 9", r, c) for r in ("LFV+MI", "LFV+KI") for c in ("with LRd", "without LRd")}
    f10 = {(r, c): p("Fig. 10", r, c) for r in ("d_first", "d_second") for c in ("cosine", "euclid")}
    return {
        "lfv": f"Table 1: LFV {t1['LFV+MI']} vs DCNN {t1['DCNN+MI']} (MI), {t1['LFV+KI']} vs "
               f"{t1['DCNN+KI']} (KI)",
        "lrd": f"Fig. 9: with LRd {f9['LFV+MI', 'with LRd']} (MI) and {f9['LFV+KI', 'with LRd']} (KI), "
               f"without {f9['LFV+MI', 'without LRd']}",
        "cosine": f"Fig. 10(a), on MI: d_first {f10['d_first', 'cosine']} (cosine) vs "
                  f"{f10['d_first', 'euclid']} (Euclid); d_second {f10['d_second', 'cosine']} vs "
                  f"{f10['d_second', 'euclid']}",
        "mi": f"Table 1 and section IV: MI below KI (DCNN {t1['DCNN+MI']} < {t1['DCNN+KI']}); Table 2 shows "
              f"the opposite (LFV+MI {p('Table 2', 'LFV+MI', 'Avg.')} > LFV+KI "
              f"{p('Table 2', 'LFV+KI', 'Avg.')})",
        "beta": "Fig. 12: beta chosen on the test cases; the best beta per case ranges from "
                f"{int(paper.fig12().min().min())} to {int(paper.fig12().max().max())}",
        "variant": f"Table 4: u1c0 has the highest LFV+MI ({p('Table 4', 'u1c0', 'LFV+MI')})",
    }


def _acc(pred: pd.DataFrame, method: str, query: str, distance: str | None = "cosine") -> pd.Series:
    g = pred[(pred["method"] == method) & (pred["query"] == query)]
    if distance is not None and g["distance"].notna().any():
        g = g[g["distance"] == distance]
    return per_cell_accuracy(g["pred"], g["label"], g["cell"])


def _row(key: str, evidence: str, data: str, better: str, worse: str, a: pd.Series, b: pd.Series,
         note: str = "", group: str = "method") -> dict:
    """a: per-cell accuracy of the claimed-worse method, b: of the claimed-better one (same cells); `key`:
    the claim (CLAIMS)."""
    b = b.reindex(a.index)
    s = paired_difference(a.to_numpy(), b.to_numpy())
    return {"key": key, "claim": CLAIMS[key], "paper's evidence": evidence, "data": data,
            "compared": f"{better} vs {worse}", "ours (better)": float(b.mean()),
            "ours (worse)": float(a.mean()), "difference": s["mean"], "95% CI low": s["low"],
            "95% CI high": s["high"], "cells": s["cells"], "verdict": verdict(s), "note": note,
            "group": group}


def _data(dataset: str, q: str) -> str:
    return f"{dataset}, {QUERY_NAME[q]}" + (" (simulated)" if dataset == "pki3" and q == "mi" else "")


def method_rows(dataset: str, pred: pd.DataFrame, ev: dict) -> list[dict]:
    """LFV + LRd against DCNN, LRd against LFV, cosine against Euclid, on each query style of a data set."""
    rows = []
    for q in sorted(pred["query"].unique()):
        lrd = _acc(pred, "lfv+lrd", q)
        rows += [_row("lfv", ev["lfv"], _data(dataset, q),
                      "LFV + LRd", "DCNN", _acc(pred, "dcnn", q, None), lrd),
                 _row("lrd", ev["lrd"], _data(dataset, q), "LFV + LRd",
                      "LFV", _acc(pred, "lfv", q), lrd),
                 _row("cosine", ev["cosine"], _data(dataset, q),
                      "cosine", "Euclid", _acc(pred, "lfv+lrd", q, "euclid"), lrd)]
    if {"ki", "mi"} <= set(pred["query"]):
        rows.append(_row("mi", ev["mi"],
                         f"{dataset}, the same test chromosomes as KI and as simulated MI", "KI", "MI",
                         _acc(pred, "lfv+lrd", "mi"), _acc(pred, "lfv+lrd", "ki"),
                         note="true here by construction: our MI queries are the KI cuts turned, bent, "
                              "given a neighbour and microscope optics (chapter 11); the paper's MI were "
                              "real"))
    return rows


def best_beta_on_validation(run, betas=range(1, 46), metric: str = "cosine") -> int:
    """The beta of highest mean per-cell accuracy after LRd on the validation cells (ties: the one
    closest to the paper's 40), as the paper should have chosen it instead of on its test set."""
    curve = beta_sweep(run, betas, metric=metric, split="val").groupby("beta")["accuracy"].mean()
    best = curve[curve >= curve.max() - 1e-12].index.to_numpy()
    return int(best[np.argmin(np.abs(best - 40))])


def beta_row(run, dataset: str, beta: int, ev: dict) -> dict:
    """beta = `beta` against the beta the validation cells choose, on the test cells."""
    chosen = best_beta_on_validation(run)
    curve = beta_sweep(run, sorted({beta, chosen}))
    at = lambda b: curve[curve["beta"] == b].set_index("cell")["accuracy"]  # noqa: E731
    q = NATIVE_QUERY[dataset]
    row = _row("beta", ev["beta"], _data(dataset, q), f"beta = {beta}",
               f"beta = {chosen} (best on validation)", at(chosen), at(beta),
               note=f"{dataset}: the validation cells choose beta = {chosen}"
                    + ("; the two agree" if chosen == beta else ""))
    return {**row, "claim": f"beta = {beta} of 46 is the split to use"}


def _untested(key: str, evidence: str, data: str, compared: str, why: str, group: str) -> dict:
    """A claim we could not test here: its row with no numbers, verdict NOT_TESTED and `why` as its note."""
    nan = float("nan")
    return {"key": key, "claim": CLAIMS[key], "paper's evidence": evidence, "data": data,
            "compared": compared, "ours (better)": nan, "ours (worse)": nan, "difference": nan,
            "95% CI low": nan, "95% CI high": nan, "cells": 0, "verdict": NOT_TESTED, "note": why,
            "group": group}


def _dcnn_test(run: Run) -> pd.Series:
    f = run.features("test", "ki")
    return per_cell_accuracy(f["logits"].argmax(1) + 1, f["labels"], f["cells"])


def baseline_rows(cfg, equal_budget: Run | None) -> list[dict]:
    """The EResNet against each of the paper's baselines at one training budget (the baselines' epochs are
    set to about the same minutes each; `equal_budget` is the EResNet trained on that budget), on the test
    cells (each baseline's learning rate was chosen on the validation cells): DCNN on KI. The paper's Table 1
    beside it. A baseline the profile does not train, or an EResNet at that budget without test features,
    gives a row that says so (NOT_TESTED)."""
    t1, rows, data = paper.table1(), [], "pki3, KI, DCNN, test cells, equal budget"
    eb = equal_budget is not None and equal_budget.has_features("test", "ki")
    ev = "Table 1, " + "; ".join(f"{c}: EResNet {paper.pct(t1.loc['EResNet', c])} vs " + ", ".join(
        f"{name} {paper.pct(t1.loc[name, c])}" for name in BASELINE_NAME.values())
        for c in ("DCNN+KI", "LFV+MI"))
    for model, name in BASELINE_NAME.items():
        run = Run(cfg.run_dir("pki3", model))
        why = (f"{name} is not trained in the {cfg.profile} profile"
               if model not in cfg.training.models.get("pki3", []) else
               "the EResNet at the baselines' budget (chapter 07) is not trained on this machine" if not eb
               else
               f"{name}'s run has no test features" if not run.has_features("test", "ki") else "")
        if why:
            rows.append(_untested("baseline", ev, data, f"EResNet vs {name}", why, "baseline"))
            continue
        rows.append(_row("baseline", ev, data, "EResNet", name, _dcnn_test(run), _dcnn_test(equal_budget),
                         group="baseline",
                         note=f"{model}: {cfg.epochs_for(model, 'pki3')} epochs; the EResNet: "
                              f"{equal_budget.settings()[0].epochs_for(PAPER_MODEL, 'pki3')} epochs"))
    return rows


def variant_rows(variants: dict, query: str, ev: dict) -> list[dict]:
    """u1c0 against each other Extended Block variant: `variants` maps a variant (u0c0, ...) to its per-cell
    accuracy (LFV + LRd, the test cells of `query`), from chromo.lab.heads."""
    if "u1c0" not in variants:
        return [_untested("variant", ev["variant"], _data("pki3", query), "u1c0 vs the other variants",
                          "no Extended Block head was trained on this profile's pki3 run (chapter 13)",
                          "variant")]
    return [_row("variant", ev["variant"], _data("pki3", query), "u1c0", v,
                 acc, variants["u1c0"], note="heads on one frozen backbone (chapter 13)", group="variant")
            for v, acc in variants.items() if v != "u1c0"]


def claims_table(cfg, beta: int = 40, equal_budget: Run | None = None, variants: dict | None = None,
                 variant_query: str = "mi") -> pd.DataFrame:
    """Every claim of the paper we can test with this profile's runs, one row per (claim, data)."""
    ev, rows, preds = evidence(), [], {}
    m = cfg.matching
    for dataset, models in cfg.training.models.items():
        run = Run.of(cfg, dataset, PAPER_MODEL)
        if PAPER_MODEL in models and run.has_features("test", NATIVE_QUERY[dataset]):
            preds[dataset] = predictions(run.path, gamma=m.gamma, beta=beta, extra_penalty=m.extra_penalty,
                                         missing_penalty=m.missing_penalty)
    for dataset, pred in preds.items():
        rows += method_rows(dataset, pred, ev)
        rows.append(beta_row(cfg.run_dir(dataset, PAPER_MODEL), dataset, beta, ev))
    rows += baseline_rows(cfg, equal_budget) + variant_rows(variants or {}, variant_query, ev)
    return pd.DataFrame(rows)


def chance(table: pd.DataFrame) -> dict:
    """The number of comparisons and how many would "hold" (or "not hold") by chance alone if no method
    differed from another: a 95% interval misses zero on one side 2.5% of the time."""
    n = int(table["difference"].notna().sum()) if len(table) else 0
    return {"comparisons": n, "expected_by_chance": round(0.025 * n, 1)}


# --- the claims as chapter 12 shows them ------------------------------------------------------------------

def _points(v: float, sign: str = "+") -> str:
    """A fraction in points (or %) with 2 decimals, signed with sign="+"; exactly zero reads "0.00", while a
    value that only rounds to zero keeps its sign ("+0.00": an interval that just excludes zero)."""
    return "0.00" if abs(v) <= TOL else f"{100 * v:{sign}.2f}"


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The claims table as chapter 12 shows it: index (claim, data); the methods compared, ours for each (%),
    the difference and its 95% interval (points), the cells and the verdict, all as text; a claim not tested
    has blank numbers and its reason in the verdict."""
    rows = []
    for _, r in table.iterrows():
        t = pd.notna(r["difference"])
        rows.append({"claim": r["claim"], "data": r["data"], "compared": r["compared"],
                     "better (%)": _points(r["ours (better)"], "") if t else "",
                     "worse (%)": _points(r["ours (worse)"], "") if t else "",
                     "difference (points)": _points(r["difference"]) if t else "",
                     "95% interval (points)": f"{_points(r['95% CI low'])} to {_points(r['95% CI high'])}"
                     if t else "", "cells": int(r["cells"]) if t else "",
                     "verdict": r["verdict"] if t else f"{r['verdict']}: {r['note']}"})
    cols = ["claim", "data", "compared", "better (%)", "worse (%)", "difference (points)",
            "95% interval (points)", "cells", "verdict"]
    return pd.DataFrame(rows, columns=cols).set_index(["claim", "data"])


def evidence_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per claim (in the table's order): the paper's evidence and our notes, each text once."""
    def join(texts):
        return "; ".join(dict.fromkeys(t for t in texts if isinstance(t, str) and t))

    tested = table[table["verdict"] != NOT_TESTED]
    g = table.groupby("claim", sort=False)
    out = pd.DataFrame({"the paper's evidence": g["paper's evidence"].agg(join),
                        "our notes": tested.groupby("claim", sort=False)["note"].agg(join)})
    return out.reindex(list(dict.fromkeys(table["claim"]))).fillna("")


def summary(table: pd.DataFrame, key: str) -> str:
    """One claim's rows in words: per row its data, the methods compared, the difference and interval
    (points) and the verdict; the reason where it was not tested."""
    rows = table[table["key"] == key]
    if not len(rows):
        return "not in this profile's table"
    parts = []
    for _, r in rows.iterrows():
        if r["verdict"] == NOT_TESTED:
            parts.append(f"{r['compared']}: {NOT_TESTED} ({r['note']})")
        else:
            parts.append(f"{r['data']}, {r['compared']}: {_points(r['difference'])} points "
                         f"({_points(r['95% CI low'])} to {_points(r['95% CI high'])}), {r['verdict']}")
    return "; ".join(dict.fromkeys(parts))


def favours(table: pd.DataFrame, key: str = "cosine", better: str = "cosine", worse: str = "Euclid") -> str:
    """Which side the point estimates of one claim's tested rows favour, in words with the count."""
    d = table.loc[(table["key"] == key) & table["difference"].notna(), "difference"]
    if not len(d):
        return "nothing (not tested)"
    up, down = int((d > TOL).sum()), int((d < -TOL).sum())
    side = better if up > down else worse if down > up else "neither"
    return f"{side} ({up} of {len(d)} point estimates favour {better}, {down} favour {worse})"


def verdict_counts(table: pd.DataFrame, key: str | None = None) -> dict:
    """{verdict: rows} over the table (or one claim), every verdict present, NOT_TESTED included."""
    v = table["verdict"] if key is None else table.loc[table["key"] == key, "verdict"]
    return {k: int((v == k).sum()) for k in ("holds", "does not hold", "cannot tell", NOT_TESTED)}


def sd_points(sd: pd.DataFrame, dataset: str, method: str = "dcnn") -> str:
    """One data set's seed-to-seed sd of a method (a recognition.yardstick table) in points, with its seeds
    and (unless the profile's own) recipe; words where none was measured."""
    if (dataset, method) not in sd.index:
        return "not measured (no recipe trained with two seeds or more)"
    r = sd.loc[(dataset, method)]
    recipe = "" if r["recipe"] == "cpu profile" else f", {r['recipe']} recipe"
    return f"{100 * r['sd']:.2f} points ({int(r['seeds'])} seeds{recipe})"


def _range(table: pd.DataFrame, key: str) -> str:
    d = table.loc[(table["key"] == key) & table["difference"].notna(), "difference"]
    return "not tested" if not len(d) else f"from {_points(d.min())} to {_points(d.max())} points"


def reading(table: pd.DataFrame, sd: pd.DataFrame) -> dict:
    """What chapter 12's "Reading the verdicts" glues: each claim in words (summary), which base distance the
    point estimates favour, the variants' verdicts and the range of their differences, the seed-to-seed spread
    of DCNN and the assignment per data set (`sd`: recognition.yardstick) in points beside the median interval
    width, and the paper's numbers each claim cites."""
    t1, t2 = paper.table1(), paper.table2()
    tested = table[table["difference"].notna()]
    width = (tested["95% CI high"] - tested["95% CI low"]).median() if len(tested) else float("nan")
    v = verdict_counts(table, "variant")
    out = {f"{k}_ours": summary(table, k) for k in CLAIMS}
    out.update({"cosine_favours": favours(table), "median_width": "not measured" if pd.isna(width)
                else f"{100 * width:.2f}", "variant_holds": v["holds"], "variant_not": v["does not hold"],
                "variant_cannot": v["cannot tell"], "variant_n": sum(v[k] for k in v if k != NOT_TESTED),
                **{f"sd_{d}_{m}": sd_points(sd, d, m) for d in ("pki3", "bioimlab")
                   for m in ("dcnn", "assign")},
                "variant_range": _range(table, "variant"),
                "p_t2_mi": paper.pct(t2.loc["LFV+MI", "Avg."]),
                "p_t2_ki": paper.pct(t2.loc["LFV+KI", "Avg."]),
                "p_t4_u1c0": paper.pct(paper.table4().loc["u1c0", "LFV+MI"]),
                "p_fig12_min": int(paper.fig12().min().min()), "p_fig12_max": int(paper.fig12().max().max()),
                "p_f10_cos": paper.pct(paper.fig10().loc["d_second", "cosine"]),
                "p_f10_euc": paper.pct(paper.fig10().loc["d_second", "euclid"])})
    cited = [("EResNet", c) for c in ("DCNN+MI", "LFV+MI", "DCNN+KI", "LFV+KI")] + [("AlexNet", "DCNN+KI")]
    for row, col in cited:
        out[f"p_{row}_{col}".lower().replace("+", "_")] = paper.pct(t1.loc[row, col])
    return out
