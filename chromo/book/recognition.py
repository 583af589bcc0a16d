"""Chapter 11's tables, from the experiments table (``python -m chromo.lab.experiments`` writes it): the
seed-to-seed spread of each recipe, BioImLab's cross-validated fine-tuning, the simulated MI factor by
factor, straightening, and the recognition targets beside the run's test numbers; and the small helpers
that turn them into the chapter's displayed tables and glued text (a missing experiment reads as words).

Rows are keyed by experiment (a file of ``configs/experiments/``), with its data set, recipe, seed and fold.
"""
from __future__ import annotations

import pandas as pd

from chromo import PAPER_MODEL
from chromo.book.paper import paper_value

# the recipes whose seed spread bounds the profile's numbers, in order of preference (yardstick)
SPREAD_RECIPES = ("cpu profile", "7 epochs", "not straightened", "64 px canvas")
# the simulated MI built one factor at a time (evaluate.MI_ABLATION's rows), as the table's columns name them
FACTORS = ("none", "rotate", "rotate_bend", "rotate_bend_neighbour", "rotate_bend_neighbour_optics")
OPTICS_PAIR = ("pki3-profile", "pki3-no-optics")
# each straightened experiment beside the same recipe without straightening
STRAIGHT_PAIRS = (("pki3-seven-epochs", "pki3-not-straightened"),
                  ("bioimlab-straightened-from-not-straightened", "bioimlab-not-straightened"),
                  ("bioimlab-seven-epochs", "bioimlab-not-straightened"))
# the pki3 experiments on training budget and resolution whose validation curves chapter 11 draws
CURVES = ("pki3-seven-epochs", "pki3-seven-epochs-blur-scaled", "pki3-equal-budget", "pki3-not-straightened",
          "pki3-not-straightened-equal-budget", "pki3-square", "pki3-square-equal-budget",
          "pki3-square-12-epochs", "pki3-square-no-maxpool")
# the same experiments by the key of their glued numbers (budget_<key>_...), the profile's recipe first
BUDGET = {"profile": "pki3-profile", "seven": "pki3-seven-epochs", "plain": "pki3-not-straightened",
          "short": "pki3-equal-budget", "plainshort": "pki3-not-straightened-equal-budget",
          "square": "pki3-square", "squareshort": "pki3-square-equal-budget", "long": "pki3-square-12-epochs",
          "nomaxpool": "pki3-square-no-maxpool"}
# BioImLab's cross-validated fine-tuning: the profile's before cross-validation chose another, and the recipes
# tried after that choice, each changing one more thing, by the key of their glued numbers (cv_<key>_...)
CV_BEFORE = "bioimlab-cv-lr0.05"
CV_LATER = {"nooptics": "bioimlab-cv-lr0.02-no-optics", "batch": "bioimlab-cv-lr0.02-batch32",
            "long": "bioimlab-cv-lr0.02-30-epochs"}
MISSING = "not measured"    # a glued number whose experiment is not in the table
DASH = "—"                  # an absent value in a displayed table


def load(cfg, name: str = "experiments.csv") -> pd.DataFrame:
    """The profile's experiments table (or curves.csv), empty when none was recorded for it."""
    path = cfg.results() / name
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["experiment", "dataset", "fold"])


def title(row) -> str:
    """'pki3: 7 epochs, seed 1' for a row of the experiments table."""
    fold = "" if pd.isna(row.get("fold")) else f", fold {int(row['fold'])}"
    seed = f", seed {int(row['seed'])}" if row["seed"] else ""
    return f"{row['dataset']}: {row['recipe']}{seed}{fold}"


def text(value, spec: str = ".4f", missing: str = MISSING) -> str:
    """A number as the prose shows it (format spec `spec`: "+.4f" for a difference, "d" for a count), or
    `missing` where it is None or NaN: a glued number never reads "nan"."""
    if value is None or pd.isna(value):
        return missing
    return format(int(value) if spec.endswith("d") else float(value), spec)


def value(table: pd.DataFrame, row, col: str) -> float:
    """table.loc[row, col] as a float (the table indexed by experiment, one row each), NaN where the row or
    the column is absent: an experiment not recorded for the profile."""
    if row is None or col not in table.columns or row not in table.index:
        return float("nan")
    return float(table.loc[row, col])


ACCURACIES = {"val_ki_dcnn": "KI DCNN", "val_ki_assign": "KI assignment", "val_mi_dcnn": "MI DCNN",
              "val_mi_assign": "MI assignment"}


def settings_table(exp: pd.DataFrame, names=None) -> pd.DataFrame:
    """The experiments table as the chapter shows it: one row per experiment outside the cross-validation
    (pki3's first; `names`: only those, in their order), titled (title), with its epochs, training minutes,
    hardware and validation accuracies (ACCURACIES) as text, accuracies to 3 decimals; DASH where a value is
    absent, and for the epochs and minutes of a row that scores another experiment's run (it trained
    nothing)."""
    cols = ["epochs", "training minutes", "hardware", *ACCURACIES.values()]
    if not len(exp):
        return pd.DataFrame(columns=cols, index=pd.Index([], name="experiment"))
    rows = exp[exp["fold"].isna()]
    if names is None:
        rows = pd.concat([rows[rows["dataset"] == "pki3"], rows[rows["dataset"] != "pki3"]])
    else:
        order = list(names)
        rows = rows[rows["experiment"].isin(order)]
        rows = rows.sort_values("experiment", key=lambda e: e.map(order.index))
    scored = [isinstance(s, str) and s != "" for s in rows.get("scores", [None] * len(rows))]
    out = pd.DataFrame({
        "epochs": [DASH if s else text(v, "g", DASH) for v, s in zip(rows["epochs"], scored)],
        "training minutes": [DASH if s else text(v, ".1f", DASH) for v, s in zip(rows["train_min"], scored)],
        "hardware": [h if isinstance(h, str) and h else DASH for h in rows["hardware"]],
        **{name: [text(v, ".3f", DASH) for v in rows[col]] if col in rows else DASH
           for col, name in ACCURACIES.items()}}, columns=cols)
    out.index = pd.Index([title(r) for _, r in rows.iterrows()], name="experiment")
    return out


def recorded_curves(exp: pd.DataFrame, curves: pd.DataFrame, names=CURVES) -> tuple[dict, list]:
    """The validation curves (curves.csv rows: epoch, epoch_s, val_acc) of the named experiments, keyed by
    title (the experiment's name where the experiments table lacks it), and the titles of those not
    recorded."""
    titles = {r["experiment"]: title(r) for _, r in exp.iterrows()} if len(exp) else {}
    have = set(curves["experiment"]) if len(curves) else set()
    drawn = {titles.get(n, n): curves[curves["experiment"] == n].sort_values("epoch")
             for n in names if n in have}
    return drawn, [titles.get(n, n) for n in names if n not in have]


def yardstick_values(sd: pd.DataFrame, datasets=("pki3", "bioimlab")) -> dict:
    """What chapter 11 glues of a yardstick() table, per data set: seed_sd_<dataset>_<method> (text),
    seed_spread_<dataset>_<method> (spread_text), seeds_<dataset> (0: none) and seed_recipe_<dataset>."""
    out = {}
    for d in datasets:
        for m in ("dcnn", "assign"):
            out[f"seed_sd_{d}_{m}"] = text(sd.loc[(d, m), "sd"] if (d, m) in sd.index else None)
            spread = spread_text(sd, d, m)
            out[f"seed_spread_{d}_{m}"] = MISSING if spread == "—" else spread
        known = (d, "dcnn") in sd.index
        out[f"seeds_{d}"] = int(sd.loc[(d, "dcnn"), "seeds"]) if known else 0
        out[f"seed_recipe_{d}"] = str(sd.loc[(d, "dcnn"), "recipe"]) if known else "none"
    return out


def seed_spread(exp: pd.DataFrame, query: str | None = None) -> pd.DataFrame:
    """Seed-to-seed spread of each recipe trained with two seeds or more, on the validation split: one row per
    recipe, data set, query style and method, with the count, mean and sd of the mean per-cell accuracies
    (eq. 9). `query`: "ki" or "mi" where a data set has it, None for each data set's native queries."""
    cols = ["recipe", "dataset", "query", "method", "seeds", "mean", "sd"]
    own = exp["scores"].isna() | (exp["scores"].astype(str) == "") if len(exp) else None
    trained = exp[own & exp["fold"].isna()] if len(exp) else exp
    rows = []
    for (recipe, d), g in (trained.groupby(["recipe", "dataset"]) if len(trained) else []):
        q = query or ("ki" if d == "pki3" else "mi")
        for method in ("dcnn", "assign"):
            v = g[f"val_{q}_{method}"].dropna() if f"val_{q}_{method}" in g else pd.Series(dtype=float)
            if len(v) > 1 and g["seed"].nunique() == len(g):
                rows.append({"recipe": recipe, "dataset": d, "query": q, "method": method, "seeds": len(v),
                             "mean": v.mean(), "sd": v.std()})
    return pd.DataFrame(rows, columns=cols)


def yardstick(exp: pd.DataFrame, query: str | None = None) -> pd.DataFrame:
    """The seed spread that bounds the profile's numbers, per (dataset, method): the profile's own recipe
    where it has at least two seeds, else the first of SPREAD_RECIPES that has."""
    s = seed_spread(exp, query)
    s = s[(s["seeds"] > 1) & s["recipe"].isin(SPREAD_RECIPES)]
    s = s.sort_values("recipe", key=lambda r: r.map(SPREAD_RECIPES.index))
    return s.groupby(["dataset", "method"]).head(1).set_index(["dataset", "method"])


def spread_text(sd: pd.DataFrame, dataset: str, method: str) -> str:
    """'0.0022 (3 seeds)' from a yardstick() table, naming the recipe unless the profile's; '—' if none."""
    if (dataset, method) not in sd.index:
        return "—"
    r = sd.loc[(dataset, method)]
    recipe = "" if r["recipe"] == "cpu profile" else f", {r['recipe']} recipe"
    return f"{r['sd']:.4f} ({r['seeds']} seeds{recipe})"


def cv_table(exp: pd.DataFrame, base: str, assign: str = "val_mi_assign") -> pd.DataFrame:
    """Each cross-validated experiment (rows with a fold): over its folds, the mean and sd of the validation
    DCNN and assignment accuracies (eq. 9; every fold holds as many cells, so the mean over folds is the mean
    over the cells), the mean training minutes, and its difference from the experiment `base`, fold by fold,
    with that difference's sd. `assign`: the column of the assignment ("size_w0.25": with the size prior).
    A fold counts where every measure present was scored."""
    cols = ["experiment", "recipe", "folds", "dcnn", "dcnn sd", "assign", "assign sd", "dcnn vs base",
            "dcnn vs base sd", "assign vs base", "assign vs base sd", "train_min"]
    folds = exp[exp["fold"].notna()] if len(exp) else exp
    present = [c for c in ("val_mi_dcnn", assign) if c in folds]
    folds = folds.dropna(subset=present).assign(**{c: float("nan") for c in ("val_mi_dcnn", assign)
                                                   if c not in present})
    ref = folds[folds["experiment"] == base].set_index("fold")
    rows = []
    for name, g in folds.groupby("experiment", sort=False):
        g = g.set_index("fold")
        row = {"experiment": name, "recipe": g["recipe"].iloc[0], "folds": len(g),
               "train_min": g["train_min"].mean()}
        for m, col in (("dcnn", "val_mi_dcnn"), ("assign", assign)):
            both = g.index.intersection(ref.index)
            diff = g.loc[both, col] - ref.loc[both, col]
            row.update({m: g[col].mean(), f"{m} sd": g[col].std(),
                        f"{m} vs base": diff.mean() if len(both) else float("nan"),
                        f"{m} vs base sd": diff.std() if len(both) > 1 else float("nan")})
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def cv_size_table(exp: pd.DataFrame, name: str) -> pd.DataFrame:
    """The relative-size prior's weight chosen on the folds of one cross-validated experiment: per weight
    (its size_w<weight> columns), the folds, the mean validation assignment and its difference from the prior
    off (weight 0), fold by fold, with that difference's sd."""
    cols = ["weight", "folds", "assign", "vs off", "vs off sd"]
    g = exp[exp["experiment"] == name] if len(exp) else exp
    sizes = sorted((c for c in g.columns if c.startswith("size_w")), key=lambda c: float(c[len("size_w"):]))
    g = g.dropna(subset=sizes) if sizes else g
    if not len(g) or "size_w0" not in sizes:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame([{"weight": float(c[len("size_w"):]), "folds": len(g), "assign": g[c].mean(),
                          "vs off": (g[c] - g["size_w0"]).mean(), "vs off sd": (g[c] - g["size_w0"]).std()}
                         for c in sizes], columns=cols)


def cv_show(cv: pd.DataFrame) -> pd.DataFrame:
    """A cv_table for display: indexed by experiment, its recipe without the "cross-validated fine-tuning: "
    that every one of them begins with."""
    return cv.assign(recipe=cv["recipe"].str.split(": ", n=1).str[-1]).set_index("experiment")


CV_MEASURES = {"folds": "d", "dcnn": ".4f", "dcnn sd": ".4f", "assign": ".4f", "assign sd": ".4f",
               "dcnn vs base": "+.4f", "dcnn vs base sd": ".4f", "assign vs base": "+.4f",
               "assign vs base sd": ".4f", "train_min": ".1f"}


def cv_values(cv: pd.DataFrame, cv_prior: pd.DataFrame, names: dict) -> dict:
    """What chapter 11 glues of the cross-validated experiments `names` ({key: experiment or None}), as text:
    cv_<key>_<measure> of cv_table (CV_MEASURES, spaces as _) and cv_<key>_prior_assign[_vs_base] of the same
    table with the size prior (`cv_prior`); MISSING where the experiment was not recorded."""
    by, by_prior = cv.set_index("experiment"), cv_prior.set_index("experiment")
    out = {}
    for key, name in names.items():
        out.update({f"cv_{key}_{c.replace(' ', '_')}": text(value(by, name, c), spec)
                    for c, spec in CV_MEASURES.items()})
        out.update({f"cv_{key}_prior_{c.replace(' ', '_')}": text(value(by_prior, name, c), CV_MEASURES[c])
                    for c in ("assign", "assign vs base")})
    return out


def cv_better(cv: pd.DataFrame, cv_prior: pd.DataFrame, base: str) -> list | None:
    """The cross-validated experiments that beat `base` fold by fold on average both in DCNN (`cv`) and in the
    assignment with the size prior (`cv_prior`), both cv_table(exp, base); None where none was compared."""
    by, by_prior = cv.set_index("experiment"), cv_prior.set_index("experiment")
    compared = [n for n in by_prior.index if n != base and pd.notna(by_prior.loc[n, "assign vs base"])
                and n in by.index and pd.notna(by.loc[n, "dcnn vs base"])]
    if not compared:
        return None
    return [n for n in compared if by.loc[n, "dcnn vs base"] > 0 and by_prior.loc[n, "assign vs base"] > 0]


def ablation_table(exp: pd.DataFrame, names=OPTICS_PAIR) -> pd.DataFrame:
    """The validation accuracy of each named experiment on the simulated MI built one factor at a time (rows:
    FACTORS; columns: (experiment, DCNN | assignment)) and, for two, the first minus the second. Empty where
    an experiment was not scored factor by factor."""
    rows = exp.set_index("experiment") if len(exp) else pd.DataFrame()
    cols = [f"val_factors_{f}_{m}" for f in FACTORS for m in ("dcnn", "assign")]
    if not all(n in rows.index for n in names) or not set(cols) <= set(rows.columns) \
            or rows.loc[list(names), cols].isna().any(axis=None):
        return pd.DataFrame()
    table = pd.DataFrame({(n, label): [float(rows.loc[n, f"val_factors_{f}_{m}"]) for f in FACTORS]
                          for n in names for m, label in (("dcnn", "DCNN"), ("assign", "assignment"))},
                         index=pd.Index(FACTORS, name="factors"))
    if len(names) == 2:
        for label in ("DCNN", "assignment"):
            table[("difference", label)] = table[(names[0], label)] - table[(names[1], label)]
    return table


def straight_table(exp: pd.DataFrame) -> pd.DataFrame:
    """Each straightened experiment beside the same recipe without straightening (STRAIGHT_PAIRS): validation
    DCNN and assignment on the native queries and, for pki3, the simulated MI; the difference; the seed spread
    of the recipe without straightening for scale. Only pairs with both rows in `exp`."""
    cols = ["straightened", "query", "method", "without", "with", "difference", "seed sd (without)"]
    by = exp.set_index("experiment") if len(exp) else pd.DataFrame()
    rows = []
    for straight, plain in STRAIGHT_PAIRS:
        if straight not in by.index or plain not in by.index:
            continue
        d = by.loc[straight, "dataset"]
        for q in (("ki", "mi") if d == "pki3" else ("mi",)):
            s = seed_spread(exp, q)
            sd = s[(s["recipe"] == by.loc[plain, "recipe"]) & (s["dataset"] == d)].set_index("method")["sd"]
            for method in ("dcnn", "assign"):
                a, b = by.loc[plain, f"val_{q}_{method}"], by.loc[straight, f"val_{q}_{method}"]
                rows.append({"straightened": straight, "query": q.upper(), "method": method, "without": a,
                             "with": b, "difference": b - a,
                             "seed sd (without)": sd.get(method, float("nan"))})
    return pd.DataFrame(rows, columns=cols)


# The recognition targets, each beside the public figure it was set against: (dataset, query, method, target,
# anchor); targets_table puts the run's test numbers beside them.
PAPER_MI = f"the paper: LFV + LRd on MI {paper_value(PAPER_MODEL, 'lfv+lrd', 'mi')} (real microscope images)"
TARGETS = [
    ("pki3", "ki", "dcnn", 0.975, "Varifocal-Net 0.98 per chromosome (G-band, private)"),
    ("pki3", "ki", "assign", 0.990, "KaryoNet 0.9958 per-cell assignment (G-band, private)"),
    ("pki3", "ki", "formula", 0.97, "(ours: exact karyotype formula)"),
    ("pki3", "mi", "dcnn", 0.92, PAPER_MI),
    ("pki3", "mi", "assign", 0.97, PAPER_MI),
    ("bioimlab", "mi", "dcnn", 0.93, "Poletti 2012: 0.94 with class reassignment"),
    ("bioimlab", "mi", "assign", 0.975, "Al-Kharraz 2021: 0.9701 (ensemble of three CNNs)"),
]
METHOD_NAME = {"dcnn": "DCNN", "assign": "assignment", "formula": "formula exact (share of cells)"}


def targets_table(metrics: dict) -> pd.DataFrame:
    """Each recognition target beside the run's test number from metrics.json (mean per-cell accuracy, eq. 9,
    of the EResNet; the formula: share of test cells whose karyotype formula is exact), and whether it is met
    (None where the run has no such number)."""
    recs = pd.DataFrame(metrics.get("records", []))
    rows = []
    for dataset, query, method, target, anchor in TARGETS:
        if method == "formula":
            ours = metrics.get("karyotype", {}).get(dataset, {}).get("formula_accuracy", float("nan"))
        else:
            hit = recs[(recs["dataset"] == dataset) & (recs["query"] == query) & (recs["method"] == method)
                       & (recs["model"] == PAPER_MODEL)] if len(recs) else recs
            ours = float(hit["accuracy_mean_cell"].iloc[0]) if len(hit) else float("nan")
        style = {"ki": "KI", "mi": "MI" if dataset == "bioimlab" else "simulated MI"}[query]
        rows.append({"data": f"{dataset}, {style}", "measure": METHOD_NAME[method], "target": target,
                     "ours (test)": ours, "met": bool(ours >= target) if ours == ours else None,
                     "public figure it was set against": anchor})
    return pd.DataFrame(rows)


def rotation_row(published: pd.DataFrame, rotated: pd.DataFrame) -> dict:
    """One cell classified as published and with every image rotated (the tables of Classifier.classify, with
    file, predicted and true): its chromosomes, the share that keep their label (matched by file name) and the
    accuracy of each."""
    def by_name(t):
        return t.set_index(t["file"].map(lambda f: str(f).rsplit("/", 1)[-1]))
    a, b = by_name(published), by_name(rotated)
    return {"chromosomes": len(a),
            "same label after rotation": float((a["predicted"] == b["predicted"].reindex(a.index)).mean()),
            "accuracy as published": float((a["predicted"] == a["true"]).mean()),
            "accuracy rotated": float((b["predicted"] == b["true"]).mean())}
