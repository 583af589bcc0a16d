"""The recipe experiments behind the cpu profile, scored on the VALIDATION split only.

Each variant is the cpu profile with a few settings changed (or one of its runs scored another way),
trained into ``runs/experiments/<variant>/``; one row per variant goes to
``book/results/cpu/experiments.csv``, which the reproducibility chapter shows, and each trained variant's
validation accuracy per epoch to ``book/results/cpu/curves.csv`` (chapter 11's curves, so that the book
needs no experiment run to be rebuilt). Choices are made on these numbers, never on the test split. Run
them alone on the machine (the minutes are part of the result):

    python -m chromo.experiments --list
    python -m chromo.experiments [--only NAME ...]
    python -m chromo.experiments --record      # curves and hardware from the variant runs here, nothing trained
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from chromo import config as config_mod

MODEL = "eresnet-u1c0"
PKI3_RUN = "runs/cpu/pki3/eresnet-u1c0"   # the cpu profile's pki3 run: the source of the profile's transfers

# recipes with seed repeats
PROFILE, SEVEN_RECIPE, PLAIN_RECIPE, SQUARE_RECIPE = "cpu profile", "7 epochs", "not straightened", "64 px canvas"
SCRATCH = {"init_from": None}
NO_ORIENT = {"orient": False, "vflip": False, "tta": False}
NO_OPTICS = {"optics": 0.0}
# the recipe before 14 pki3 epochs were adopted (the cpu profile until 2026-11-29, third reference run): the
# tall canvas, straightened, 7 pki3 epochs; every variant named "7 epochs" keeps it (a BioImLab one starts
# from its pki3 run and is fine-tuned for its own 20 epochs, as in the profile)
SEVEN = {"epochs": {"default": 7, "bioimlab": 20}}
PKI3_SEVEN = "pki3: 7 epochs"
PKI3_SEVEN_RUN = "runs/experiments/pki3-7-epochs/cpu/pki3/eresnet-u1c0"     # the source of its BioImLab transfers
BIO_SEVEN = "bioimlab: from the 7-epoch pki3 run"
# the recipe before straightening was adopted (the cpu profile until 2026-11-29, second reference run): the
# tall canvas without straightening, 7 pki3 epochs; every variant named "not straightened" keeps it
PLAIN = {"straighten": False, **SEVEN}
# its pki3 run: the source of its BioImLab transfers
PKI3_PLAIN_RUN = "runs/experiments/pki3-not-straightened/cpu/pki3/eresnet-u1c0"
# the recipe before the tall canvas (the cpu profile until 2026-11-29, first reference run): a 64 px square,
# 8 epochs (BioImLab 20), not straightened; every variant named "64 px" keeps it
SQUARE = {"canvas": 64, "epochs": {"default": 8, "bioimlab": 20}, "straighten": False}
# that recipe's pki3 run: the source of the 64 px BioImLab transfers
PKI3_SQUARE_RUN = "runs/experiments/pki3-64-px-canvas-8-epochs/cpu/pki3/eresnet-u1c0"
# the pki3 run of the 64 px recipe without the optics augmentation: the source of the BioImLab runs without it
PKI3_NO_OPTICS_RUN = "runs/experiments/pki3-64-px-canvas-no-optics-augmentation/cpu/pki3/eresnet-u1c0"
# the optics augmentation's blur scaled with the canvas as the simulated MI's is (x max(H, W) / 64: 0.3-1.8 px on
# 96 x 48 instead of 0.2-1.2), in the pki3 run and in the BioImLab run fine-tuned from it; on the 7-epoch recipe
BLUR = {"optics_blur_scaled": True}
PKI3_BLUR = "pki3: 7 epochs, optics blur scaled with the canvas"
PKI3_BLUR_RUN = "runs/experiments/pki3-7-epochs-optics-blur-scaled-with-the-canvas/cpu/pki3/eresnet-u1c0"
BIO_BLUR = "bioimlab: 7 epochs, optics blur scaled with the canvas (in its pki3 source too)"
# the baselines' budget in configs/cpu.yaml (about 4 training minutes each on the Intel Xeon) in EResNet epochs: the
# EResNet trained on that budget is the fair partner of the baselines (chapter 07, the claims page)
EQUAL_BUDGET = "pki3: cpu profile at the baselines' budget (2.1 epochs)"     # the same run whatever the profile's epochs
PLAIN_SHORT = "pki3: not straightened, at the baselines' budget (2.1 epochs)"
# the 64 px recipe against its training minutes and resolution: the measurements that led to the tall canvas
SQUARE_RUN = "pki3: 64 px canvas, 8 epochs"
SQUARE_SHORT = "pki3: 64 px canvas at the baselines' budget (2.1 epochs)"
LONGER = "pki3: 64 px canvas, 12 epochs"
# without the stem's max-pool every stage sees twice the resolution a side, at several times the cost per image
NO_MAXPOOL = "pki3: 64 px canvas, no stem max-pool, 3 epochs"
# straightening of bent chromosomes (data.straighten): measured against the same recipe without it, then adopted
PKI3_PLAIN = "pki3: not straightened"
BIO_PLAIN = "bioimlab: not straightened (transfer from pki3)"
STRAIGHT_FROM_PLAIN = "bioimlab: straightened, from the unstraightened pki3 model"
# the optics augmentation at the profile's own recipe: the simulated MI built one factor at a time, with and
# without it (chapter 11; scored on the validation split into the ABLATION columns)
PKI3_NO_OPTICS = "pki3: cpu profile, no optics augmentation"
OPTICS_PAIR = ("pki3: cpu profile", PKI3_NO_OPTICS)
ABLATION = "val_factors_"          # + the factors joined by _ ("none": KI) + _dcnn / _assign (ablation_column)
# pki3 runs against training minutes (chapter 11's figure, beside the profile's own runs)
CURVES = (PKI3_SEVEN, PKI3_BLUR, EQUAL_BUDGET, PKI3_PLAIN, PLAIN_SHORT, SQUARE_RUN, SQUARE_SHORT, LONGER, NO_MAXPOOL)
CURVE_COLUMNS = ["variant", "epoch", "epoch_s", "val_acc"]
# the straightened runs beside the same recipe without straightening (chapter "Recognition"): (straightened, plain)
STRAIGHT_PAIRS = ((PKI3_SEVEN, PKI3_PLAIN),
                  (STRAIGHT_FROM_PLAIN, BIO_PLAIN),
                  (BIO_SEVEN, BIO_PLAIN))
# BioImLab's fine-tuning tuned by 5-fold cross-validation over its 70 cells outside the test split
# (config.val_fold, data.splits.fold): each fold validates on 14 cells instead of the profile's 8, and a
# recipe's score is the mean over the folds (cv_table). Each recipe names its learning rate and epochs (so a
# name keeps its meaning when the profile changes) and starts from the profile's pki3 run.
CV_FOLDS = 5
CV = "bioimlab CV: "


def _fine_tuning(lr: float, epochs: int) -> dict:
    return {"lr_by_dataset": {"bioimlab": lr}, "epochs": {"default": 14, "bioimlab": epochs}}


CV_BASE = "learning rate 0.05, 20 epochs"      # the cpu profile's fine-tuning before cross-validation
CV_RECIPES = {  # recipe: its settings
    CV_BASE: _fine_tuning(0.05, 20),
    "learning rate 0.02, 20 epochs": _fine_tuning(0.02, 20),
    "learning rate 0.05, 30 epochs": _fine_tuning(0.05, 30),
    "learning rate 0.01, 20 epochs": _fine_tuning(0.01, 20),
}
# tried after 0.02 was adopted, each changing one more thing: what else the fine-tuning on microscope cuts might want
CV_NO_OPTICS = "learning rate 0.02, 20 epochs, no optics augmentation"
CV_BATCH32 = "learning rate 0.02, 20 epochs, batch 32"
CV_LONG = "learning rate 0.02, 30 epochs"
CV_AFTER_ADOPTION = (CV_NO_OPTICS, CV_BATCH32, CV_LONG)
CV_RECIPES.update({CV_NO_OPTICS: {**_fine_tuning(0.02, 20), "optics": 0.0},
                   CV_BATCH32: {**_fine_tuning(0.02, 20), "batch_size": 32},
                   CV_LONG: _fine_tuning(0.02, 30)})


def _cv_variants() -> dict:
    return {f"{CV}{recipe}, fold {k + 1} of {CV_FOLDS}":
            ("bioimlab", {**changes, "val_fold": [k, CV_FOLDS], "init_from": {"bioimlab": PKI3_RUN}}, "run")
            for recipe, changes in CV_RECIPES.items() for k in range(CV_FOLDS)}


# name: (dataset, settings changed from the cpu profile, how it is scored)
VARIANTS = {
    "pki3: cpu profile": ("pki3", {}, "run"),
    "pki3: cpu profile, no flip averaging": ("pki3", {}, "no-tta"),
    "pki3: cpu profile, seed 1": ("pki3", {"seed": 1}, "run"),
    "pki3: cpu profile, seed 2": ("pki3", {"seed": 2}, "run"),
    PKI3_NO_OPTICS: ("pki3", NO_OPTICS, "run"),
    # the 7-epoch recipe (rows trained before 14 epochs were adopted); "no flip averaging" and "unchanged" score
    # its pki3 run, retrained in their own folders when reproduced
    PKI3_SEVEN: ("pki3", SEVEN, "run"),
    "pki3: 7 epochs, no flip averaging": ("pki3", SEVEN, "no-tta"),
    "pki3: 7 epochs, seed 1": ("pki3", {**SEVEN, "seed": 1}, "run"),
    "pki3: 7 epochs, seed 2": ("pki3", {**SEVEN, "seed": 2}, "run"),
    PKI3_BLUR: ("pki3", {**SEVEN, **BLUR}, "run"),
    EQUAL_BUDGET: ("pki3", {"epochs": {"default": 2.1}}, "run"),
    PKI3_PLAIN: ("pki3", PLAIN, "run"),
    "pki3: not straightened, seed 1": ("pki3", {**PLAIN, "seed": 1}, "run"),
    "pki3: not straightened, seed 2": ("pki3", {**PLAIN, "seed": 2}, "run"),
    PLAIN_SHORT: ("pki3", {**PLAIN, "epochs": {"default": 2.1}}, "run"),
    SQUARE_RUN: ("pki3", SQUARE, "run"),
    "pki3: 64 px canvas, seed 1": ("pki3", {**SQUARE, "seed": 1}, "run"),
    "pki3: 64 px canvas, seed 2": ("pki3", {**SQUARE, "seed": 2}, "run"),
    "pki3: 64 px canvas, no optics augmentation": ("pki3", {**SQUARE, **NO_OPTICS}, "run"),
    "pki3: 64 px canvas, no optics augmentation, no vertical flips": (
        "pki3", {**SQUARE, **NO_OPTICS, "vflip": False}, "run"),
    SQUARE_SHORT: ("pki3", {**SQUARE, "epochs": {"default": 2.1}}, "run"),
    LONGER: ("pki3", {**SQUARE, "epochs": {"default": 12}}, "run"),
    NO_MAXPOOL: ("pki3", {**SQUARE, "stem_maxpool": False, "epochs": {"default": 3}}, "run"),
    "bioimlab: pki3 model unchanged": ("bioimlab", {}, "pki3-model"),
    "bioimlab: cpu profile (transfer from pki3)": ("bioimlab", {}, "run"),
    "bioimlab: cpu profile, no flip averaging": ("bioimlab", {}, "no-tta"),
    # seeds of the fine-tuning, each from the profile's pki3 run (the name would mean that seed's pki3 run)
    "bioimlab: cpu profile, seed 1": ("bioimlab", {"seed": 1, "init_from": {"bioimlab": PKI3_RUN}}, "run"),
    "bioimlab: cpu profile, seed 2": ("bioimlab", {"seed": 2, "init_from": {"bioimlab": PKI3_RUN}}, "run"),
    "bioimlab: the 7-epoch pki3 model unchanged": ("bioimlab", SEVEN, "pki3-model"),
    BIO_SEVEN: ("bioimlab", {"init_from": {"bioimlab": PKI3_SEVEN_RUN}}, "run"),
    f"{BIO_SEVEN}, no flip averaging": ("bioimlab", {"init_from": {"bioimlab": PKI3_SEVEN_RUN}}, "no-tta"),
    f"{BIO_SEVEN}, seed 1": ("bioimlab", {"seed": 1, "init_from": {"bioimlab": PKI3_SEVEN_RUN}}, "run"),
    f"{BIO_SEVEN}, seed 2": ("bioimlab", {"seed": 2, "init_from": {"bioimlab": PKI3_SEVEN_RUN}}, "run"),
    BIO_BLUR: ("bioimlab", {**BLUR, "init_from": {"bioimlab": PKI3_BLUR_RUN}}, "run"),
    BIO_PLAIN: ("bioimlab", {**PLAIN, "init_from": {"bioimlab": PKI3_PLAIN_RUN}}, "run"),
    "bioimlab: not straightened, seed 1": ("bioimlab", {**PLAIN, "seed": 1, "init_from": {"bioimlab": PKI3_PLAIN_RUN}}, "run"),
    "bioimlab: not straightened, seed 2": ("bioimlab", {**PLAIN, "seed": 2, "init_from": {"bioimlab": PKI3_PLAIN_RUN}}, "run"),
    STRAIGHT_FROM_PLAIN: ("bioimlab", {"init_from": {"bioimlab": PKI3_PLAIN_RUN}}, "run"),
    "bioimlab: 64 px canvas (transfer from pki3)": (
        "bioimlab", {**SQUARE, "init_from": {"bioimlab": PKI3_SQUARE_RUN}}, "run"),
    "bioimlab: 64 px canvas, seed 1": ("bioimlab", {**SQUARE, "seed": 1, "init_from": {"bioimlab": PKI3_SQUARE_RUN}}, "run"),
    "bioimlab: 64 px canvas, seed 2": ("bioimlab", {**SQUARE, "seed": 2, "init_from": {"bioimlab": PKI3_SQUARE_RUN}}, "run"),
    "bioimlab: 64 px canvas, scratch, no orientation, no optics augmentation": (
        "bioimlab", {**SQUARE, **SCRATCH, **NO_ORIENT, **NO_OPTICS}, "run"),
    "bioimlab: 64 px canvas, scratch, orientation, no optics augmentation": (
        "bioimlab", {**SQUARE, **SCRATCH, **NO_OPTICS}, "run"),
    "bioimlab: 64 px canvas, no optics augmentation in fine-tuning": (
        "bioimlab", {**SQUARE, **NO_OPTICS, "init_from": {"bioimlab": PKI3_SQUARE_RUN}}, "run"),
    "bioimlab: 64 px canvas, no optics augmentation (nor in its pki3 source)": (
        "bioimlab", {**SQUARE, **NO_OPTICS, "init_from": {"bioimlab": PKI3_NO_OPTICS_RUN}}, "run"),
    "bioimlab: 64 px canvas, no optics augmentation, seed 1": (
        "bioimlab", {**SQUARE, **NO_OPTICS, "seed": 1, "init_from": {"bioimlab": PKI3_NO_OPTICS_RUN}}, "run"),
    "bioimlab: 64 px canvas, no optics augmentation, seed 2": (
        "bioimlab", {**SQUARE, **NO_OPTICS, "seed": 2, "init_from": {"bioimlab": PKI3_NO_OPTICS_RUN}}, "run"),
    **_cv_variants(),
}
# BioImLab's fine-tuning ran at learning rate 0.05 until cross-validation chose 0.02 (configs/cpu.yaml,
# lr_by_dataset): each BioImLab variant trained before keeps 0.05, pinned here (a run's digest holds its rate, so
# their runs stay valid); the profile's own rows were retrained at 0.02, and a pki3 model scored unchanged has none
BIO_LR_BEFORE = {"lr_by_dataset": {"bioimlab": 0.05}}
PROFILE_BIO = ("bioimlab: pki3 model unchanged", "bioimlab: cpu profile (transfer from pki3)",
               "bioimlab: cpu profile, no flip averaging", "bioimlab: cpu profile, seed 1", "bioimlab: cpu profile, seed 2")
for _name, (_dataset, _changes, _how) in list(VARIANTS.items()):
    if (_dataset == "bioimlab" and _how != "pki3-model" and _name not in PROFILE_BIO
            and "lr_by_dataset" not in _changes):
        VARIANTS[_name] = (_dataset, {**BIO_LR_BEFORE, **_changes}, _how)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def variant_config(name: str):
    """The cpu profile with the variant's settings; its runs go to runs/experiments/<slug>/ unless the
    variant is the cpu profile itself (then its runs are the main job's)."""
    dataset, changes, _ = VARIANTS[name]
    cfg = config_mod.load("cpu", **{k: v for k, v in changes.items() if v is not None})
    if "init_from" in changes and changes["init_from"] is None:
        cfg.init_from = None
    if changes:
        cfg.runs_dir = str(Path("runs") / "experiments" / _slug(name))
    return cfg


def variant_run(name: str):
    """The finished run of a variant (chromo.run.Run), or None where it has not been trained here."""
    from chromo.run import Run

    dataset = VARIANTS[name][0]
    cfg = variant_config(name)
    run = Run.of(cfg, dataset, MODEL)
    return run if run.is_done(cfg, dataset, MODEL) else None


def load_curves(cfg) -> pd.DataFrame:
    """The trained variants' validation accuracy per epoch and the seconds of each epoch (curves.csv: one
    row per variant and epoch; empty when none was recorded for the profile)."""
    path = cfg.results() / "curves.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=CURVE_COLUMNS)


def with_curves(curves: pd.DataFrame, names) -> pd.DataFrame:
    """`curves` with the curve of each named variant taken from its run's log where that run is here and
    finished with the variant's settings (variant_run); a variant trained elsewhere keeps its recorded curve.
    Only trained variants ("run") have curves; the others score a run that has its own. A curve under a name
    that is no longer a variant (renamed or removed) is dropped."""
    curves = curves[curves["variant"].isin(VARIANTS)]
    for name in names:
        run = variant_run(name) if VARIANTS[name][2] == "run" else None
        if run is None:
            continue
        log = run.log()[CURVE_COLUMNS[1:]].assign(variant=name)[CURVE_COLUMNS]
        curves = pd.concat([curves[curves["variant"] != name], log], ignore_index=True)
    order = {v: i for i, v in enumerate(VARIANTS)}
    return curves.sort_values(["variant", "epoch"], key=lambda c: c.map(order) if c.name == "variant" else c,
                              ignore_index=True)


def with_hardware(exp: pd.DataFrame) -> pd.DataFrame:
    """`exp` with an empty hardware cell filled from its variant's run where that run is here (its
    provenance.json); rows of runs trained elsewhere before the column existed stay empty (not recorded)."""
    exp = exp.copy()
    exp["hardware"] = exp["hardware"].astype(object) if "hardware" in exp else None    # all-empty reads as float
    for i, name in exp["variant"].items():
        if pd.isna(exp.at[i, "hardware"]) and name in VARIANTS and (run := variant_run(name)) is not None:
            exp.at[i, "hardware"] = run.provenance().get("hardware")
    return exp


def score(net, cfg, dataset: str, split: str = "val") -> dict:
    """Mean per-cell accuracy (eq. 9) of DCNN and of the karyotype assignment on a split, for the native
    queries and, for pki3, the simulated MI ones. The assignment is on -log p alone: this table compares
    recipes of the network; the relative-size prior (cfg.size_prior) is chosen and measured on its own
    (chromo.evaluate.size_prior_sweep, chapter 8)."""
    from chromo.data.loader import NATIVE_QUERY, mi_queries, prepare
    from chromo.evaluate import dcnn_and_assignment
    from chromo.inference import predict

    s = prepare(cfg, dataset, progress=False).split(split)
    queries = {NATIVE_QUERY[dataset]: s.images}
    if NATIVE_QUERY[dataset] == "ki":
        queries["mi"] = mi_queries(s.images, cfg)
    out = {}
    for q, imgs in queries.items():
        acc = dcnn_and_assignment(predict(net, imgs, cfg)[0], s.labels, s.cells, cfg.extra_penalty, cfg.missing_penalty)
        out.update({f"{split}_{q}_{k}": v for k, v in acc.items()})
    return out


def load(cfg) -> pd.DataFrame:
    """The profile's experiments table (empty when none was run for it)."""
    path = cfg.results() / "experiments.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["variant", "dataset"])


def seed_recipe(name: str) -> str | None:
    """The recipe a variant is, with another seed at most: PROFILE (the cpu profile's own settings),
    SEVEN_RECIPE (the profile with 7 pki3 epochs), PLAIN_RECIPE (that without straightening) or SQUARE_RECIPE
    (the 64 px recipe), the BioImLab runs of each from that recipe's pki3 run; None for any other variant.
    The seed repeats of a recipe give its seed-to-seed spread."""
    if name not in VARIANTS or VARIANTS[name][2] != "run":
        return None
    rest = {k: v for k, v in VARIANTS[name][1].items() if k != "seed" and (k, v) not in BIO_LR_BEFORE.items()}
    source = rest.pop("init_from", None)
    if not rest and source in (None, {"bioimlab": PKI3_RUN}):
        return PROFILE
    if (rest == SEVEN and source is None) or (not rest and source == {"bioimlab": PKI3_SEVEN_RUN}):
        return SEVEN_RECIPE
    if rest == PLAIN and source in (None, {"bioimlab": PKI3_PLAIN_RUN}):
        return PLAIN_RECIPE
    if rest == SQUARE and source in (None, {"bioimlab": PKI3_SQUARE_RUN}):
        return SQUARE_RECIPE
    return None


def seed_spread(exp: pd.DataFrame, query: str | None = None) -> pd.DataFrame:
    """Seed-to-seed spread of each recipe (seed_recipe), on the validation split: one row per recipe, dataset,
    query style and method (DCNN, assignment), with the count, mean and standard deviation of the mean
    per-cell accuracies (eq. 9) over its seeds. `query`: "ki" or "mi" where a dataset has it (pki3: both;
    BioImLab: mi only), None for each dataset's native queries (KI for pki3, MI for BioImLab)."""
    named = exp.assign(recipe=exp["variant"].map(seed_recipe)).dropna(subset=["recipe"]) if len(exp) else exp
    rows = []
    for (r, d), g in (named.groupby(["recipe", "dataset"]) if len(named) else []):
        q = query or ("ki" if d == "pki3" else "mi")
        for method in ("dcnn", "assign"):
            v = g[f"val_{q}_{method}"].dropna() if f"val_{q}_{method}" in g else pd.Series(dtype=float)
            if len(v):
                rows.append({"recipe": r, "dataset": d, "query": q, "method": method, "seeds": len(v),
                             "mean": v.mean(), "sd": v.std()})
    return pd.DataFrame(rows, columns=["recipe", "dataset", "query", "method", "seeds", "mean", "sd"])


def yardstick(exp: pd.DataFrame, query: str | None = None) -> pd.DataFrame:
    """The seed-to-seed spread that bounds the profile's numbers, per (dataset, method), for the native
    queries or those named by `query` (seed_spread): the profile's own where it has at least two seeds, else
    the 7-epoch recipe's, else the unstraightened recipe's, else the 64 px recipe's (named in the `recipe`
    column), else none."""
    spread = seed_spread(exp, query)
    spread = spread[spread["seeds"] > 1]
    order = {PROFILE: 0, SEVEN_RECIPE: 1, PLAIN_RECIPE: 2, SQUARE_RECIPE: 3}
    best = spread.sort_values("recipe", key=lambda r: r.map(order)).groupby(["dataset", "method"]).head(1)
    return best.set_index(["dataset", "method"])


def spread_text(sd: pd.DataFrame, dataset: str, method: str) -> str:
    """'0.0022 (3 seeds)' from a yardstick() table, naming the recipe when it is not the profile's; '—' if none."""
    if (dataset, method) not in sd.index:
        return "—"
    r = sd.loc[(dataset, method)]
    return f"{r['sd']:.4f} ({r['seeds']} seeds{'' if r['recipe'] == PROFILE else ', ' + r['recipe'] + ' recipe'})"


def cv_recipe(name: str) -> str | None:
    """The cross-validated recipe a variant is one fold of ("learning rate 0.02, 20 epochs" for "bioimlab CV:
    learning rate 0.02, 20 epochs, fold 3 of 5"), None for any other variant."""
    if name not in VARIANTS or not name.startswith(CV) or ", fold " not in name:
        return None
    recipe = name[len(CV):].rsplit(", fold ", 1)[0]
    return recipe if recipe in CV_RECIPES else None


def cv_table(exp: pd.DataFrame, base: str = CV_BASE, assign: str = "val_mi_assign") -> pd.DataFrame:
    """Each cross-validated BioImLab recipe (CV_RECIPES): over its folds found in `exp`, the mean and standard
    deviation of the validation DCNN and assignment accuracies (eq. 9; every fold holds the same number of
    cells, so the mean over folds is the mean over all 70 cells) and the mean training minutes; its difference
    from the recipe `base` (default CV_BASE, the fine-tuning before cross-validation), fold by fold, with that
    difference's fold-to-fold sd (the same folds, so it is smaller than either recipe's own). One row per recipe
    with a fold, in CV_RECIPES order. `assign`: the column of the fold rows holding the assignment accuracy
    (default: on -log p alone; "size_w0.25": with the relative-size prior at weight 0.25)."""
    if base not in CV_RECIPES:
        raise ValueError(f"cv_table: base {base!r} is not a cross-validated recipe (CV_RECIPES)")
    cols = ["recipe", "folds", "dcnn", "dcnn sd", "assign", "assign sd", "dcnn vs base", "dcnn vs base sd",
            "assign vs base", "assign vs base sd", "train_min"]
    if not len(exp):
        return pd.DataFrame(columns=cols)
    named = exp.assign(recipe=exp["variant"].map(cv_recipe)).dropna(subset=["recipe"])
    # a fold counts where every measure present was scored, so "folds" is what the means average over; a
    # measure no fold has is NaN throughout
    present = [c for c in ("val_mi_dcnn", assign) if c in named]
    named = named.dropna(subset=present).assign(**{c: float("nan") for c in ("val_mi_dcnn", assign) if c not in present})
    named = named.assign(fold=named["variant"].str.extract(r", fold (\d+) of ")[0].astype(float))
    ref = named[named["recipe"] == base].set_index("fold")
    rows = []
    for recipe in CV_RECIPES:
        g = named[named["recipe"] == recipe].set_index("fold")
        if not len(g):
            continue
        row = {"recipe": recipe, "folds": len(g),
               "train_min": g["train_min"].mean() if "train_min" in g else float("nan")}
        for m, col in (("dcnn", "val_mi_dcnn"), ("assign", assign)):
            v = g[col]
            row.update({m: v.mean(), f"{m} sd": v.std()})
            both = v.index.intersection(ref.index)
            diff = v[both] - ref.loc[both, col]
            row.update({f"{m} vs base": diff.mean() if len(both) else float("nan"),
                        f"{m} vs base sd": diff.std() if len(both) > 1 else float("nan")})
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


SIZE_COLUMN = "size_w"   # cv rows: "size_w0.25" is the fold's assignment with the size prior at weight 0.25


def cv_size_scores(run: Path, cfg) -> dict:
    """One fold's validation assignment (eq. 9) at each weight of the relative-size prior (evaluate.SIZE_WEIGHTS,
    0: off), the size model fitted on the fold's own training cells (inference.extract_features writes it)."""
    from chromo.evaluate import size_prior_sweep
    from chromo.inference import extract_features

    extract_features(run, "val", progress=False)
    sw = size_prior_sweep(run, extra_penalty=cfg.extra_penalty, missing_penalty=cfg.missing_penalty)
    sw = sw[sw["query"] == "mi"]                          # BioImLab's own (microscope) queries
    return {f"{SIZE_COLUMN}{w:g}": float(a) for w, a in zip(sw["weight"], sw["accuracy"])}


def cv_profile_recipe(cfg) -> str | None:
    """The cross-validated recipe that is the profile's own BioImLab fine-tuning, None if none is: the recipe
    (settings changed from the cpu profile) whose fine-tuning agrees with the profile's in every setting any
    recipe changes (learning rate, epochs, optics, batch size, ...)."""
    def seen(c, key):                                    # a setting as BioImLab's fine-tuning sees it
        if key == "lr_by_dataset":
            return c.lr_for("bioimlab")
        return c.epochs_for(MODEL, "bioimlab") if key == "epochs" else getattr(c, key)
    keys = {k for changes in CV_RECIPES.values() for k in changes}
    return next((r for r, changes in CV_RECIPES.items()
                 if all(seen(config_mod.load("cpu", **changes), k) == seen(cfg, k) for k in keys)), None)


def cv_size_table(exp: pd.DataFrame, recipe: str) -> pd.DataFrame:
    """BioImLab's relative-size prior chosen on the cross-validation folds of one recipe: per weight (the
    size_w<weight> columns of its fold rows), the folds, the mean validation assignment and its difference from
    the prior off (weight 0) fold by fold, with that difference's fold-to-fold sd."""
    cols = ["weight", "folds", "assign", "vs off", "vs off sd"]
    g = exp[exp["variant"].map(cv_recipe) == recipe] if len(exp) else exp
    sizes = sorted((c for c in g.columns if c.startswith(SIZE_COLUMN)), key=lambda c: float(c[len(SIZE_COLUMN):]))
    g = g.dropna(subset=sizes) if sizes else g
    off = f"{SIZE_COLUMN}0"
    if not len(g) or off not in sizes:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame([{"weight": float(c[len(SIZE_COLUMN):]), "folds": len(g), "assign": g[c].mean(),
                          "vs off": (g[c] - g[off]).mean(), "vs off sd": (g[c] - g[off]).std()} for c in sizes],
                        columns=cols)


def ablation_scores(run: Path) -> dict:
    """The simulated MI built one factor at a time (evaluate.mi_ablation) on the validation split, the
    assignment on -log p alone as everywhere in this table: {ABLATION<factors>_<dcnn|assign>: accuracy}."""
    from chromo.evaluate import mi_ablation

    t = mi_ablation(run, split="val", prior=False)
    return {ablation_column(f, m): float(t.loc[f, col]) for f in t.index for m, col in (("dcnn", "DCNN"), ("assign", "assignment"))}


def ablation_column(factors: str, method: str) -> str:
    """The experiments table's column of one row of evaluate.MI_ABLATION and a method (dcnn, assign):
    e.g. val_factors_rotate_bend_dcnn."""
    from chromo.evaluate import MI_ABLATION

    return f"{ABLATION}{'_'.join(MI_ABLATION[factors]) or 'none'}_{method}"


def ablation_table(exp: pd.DataFrame, names=OPTICS_PAIR) -> pd.DataFrame:
    """The validation accuracy of each named variant on the simulated MI built one factor at a time (rows:
    evaluate.MI_ABLATION's factors; columns: (variant, DCNN | assignment)) and, for two variants, the first
    minus the second ("difference"). Empty where a variant has not been scored factor by factor."""
    from chromo.evaluate import MI_ABLATION

    rows = exp.set_index("variant") if len(exp) else pd.DataFrame()
    cols = [ablation_column(f, m) for f in MI_ABLATION for m in ("dcnn", "assign")]
    if not all(n in rows.index for n in names) or not set(cols) <= set(rows.columns) \
            or rows.loc[list(names), cols].isna().any(axis=None):
        return pd.DataFrame()
    out = {}
    for n in names:
        for m, label in (("dcnn", "DCNN"), ("assign", "assignment")):
            out[(n, label)] = [float(rows.loc[n, ablation_column(f, m)]) for f in MI_ABLATION]
    table = pd.DataFrame(out, index=pd.Index(list(MI_ABLATION), name="factors"))
    if len(names) == 2:
        for label in ("DCNN", "assignment"):
            table[("difference", label)] = table[(names[0], label)] - table[(names[1], label)]
    return table


def straight_table(exp: pd.DataFrame) -> pd.DataFrame:
    """Each straightened variant beside the same recipe without straightening (STRAIGHT_PAIRS): validation
    DCNN and assignment on the native queries and, for pki3, the simulated MI; the difference; the seed
    spread of the unstraightened recipe (PLAIN_RECIPE, at least two seeds) for scale. Only pairs with both
    runs in `exp`."""
    by = exp.set_index("variant") if len(exp) else pd.DataFrame()
    sds = {}
    for q in ("ki", "mi"):
        s = seed_spread(exp, q)
        sds[q] = s[(s["recipe"] == PLAIN_RECIPE) & (s["seeds"] > 1)].set_index(["dataset", "method"])["sd"]
    rows = []
    for straight, plain in STRAIGHT_PAIRS:
        if straight not in by.index or plain not in by.index:
            continue
        d = by.loc[straight, "dataset"]
        for q in (("ki", "mi") if d == "pki3" else ("mi",)):
            for method in ("dcnn", "assign"):
                a, b = by.loc[plain, f"val_{q}_{method}"], by.loc[straight, f"val_{q}_{method}"]
                rows.append({"straightened variant": straight, "query": q.upper(), "method": method,
                             "without": a, "straightened": b, "difference": b - a,
                             "seed sd (without)": sds[q].get((d, method), float("nan"))})
    return pd.DataFrame(rows, columns=["straightened variant", "query", "method", "without", "straightened",
                                       "difference", "seed sd (without)"])


# The recognition targets the project set itself (issue 10), each beside the public figure it was set
# against; `targets_table` puts the reference run's test numbers beside them.
TARGETS = [  # (dataset, query, method, target, public anchor)
    ("pki3", "ki", "dcnn", 0.975, "Varifocal-Net 0.98 per chromosome (G-band, private)"),
    ("pki3", "ki", "assign", 0.990, "KaryoNet 0.9958 per-cell assignment (G-band, private)"),
    ("pki3", "ki", "formula", 0.97, "(ours: exact karyotype formula)"),
    ("pki3", "mi", "dcnn", 0.92, "the paper: LFV + LRd on MI 0.9472 (real microscope images)"),
    ("pki3", "mi", "assign", 0.97, "the paper: LFV + LRd on MI 0.9472 (real microscope images)"),
    ("bioimlab", "mi", "dcnn", 0.93, "Poletti 2012: 0.94 with class reassignment"),
    ("bioimlab", "mi", "assign", 0.975, "Al-Kharraz 2021: 0.9701 (ensemble of three CNNs)"),
]
METHOD_NAME = {"dcnn": "DCNN", "assign": "assignment", "formula": "formula exact (share of cells)"}


def targets_table(metrics: dict) -> pd.DataFrame:
    """Each recognition target (TARGETS) beside the run's test number from metrics.json (mean per-cell
    accuracy, eq. 9, of the EResNet; the formula: share of test cells whose karyotype formula is exact), and
    whether it is met; NaN where the run has no such number (a data set it does not train)."""
    recs = pd.DataFrame(metrics.get("records", []))
    rows = []
    for dataset, query, method, target, anchor in TARGETS:
        if method == "formula":
            ours = metrics.get("karyotype", {}).get(dataset, {}).get("formula_accuracy", float("nan"))
        else:
            hit = recs[(recs["dataset"] == dataset) & (recs["query"] == query) & (recs["method"] == method)
                       & (recs["model"] == MODEL)] if len(recs) else recs
            ours = float(hit["accuracy_mean_cell"].iloc[0]) if len(hit) else float("nan")
        style = {"ki": "KI", "mi": "MI" if dataset == "bioimlab" else "simulated MI"}[query]
        rows.append({"data": f"{dataset}, {style}", "measure": METHOD_NAME[method], "target": target,
                     "ours (test)": ours, "met": bool(ours >= target) if ours == ours else None,
                     "public figure it was set against": anchor})
    return pd.DataFrame(rows)


def run_variant(name: str) -> dict:
    import json

    from chromo import device
    from chromo.train import train

    dataset, changes, how = VARIANTS[name]
    cfg = variant_config(name)
    t = time.time()
    if how == "pki3-model":               # the pki3 run applied to another data set, unchanged
        run = train(cfg, "pki3", MODEL, progress=False)
    else:
        run = train(cfg, dataset, MODEL, progress=False)
    net, _ = run.load_model(device())
    if how == "no-tta":
        cfg.tta = False
    done = run.done()
    row = {"variant": name, "dataset": dataset, "changes": json.dumps(changes) if changes else "",
           "scored": how, "seed": cfg.seed, "epochs": cfg.epochs_for(MODEL, dataset),
           "train_min": round(done["train_s"] / 60, 1) if how == "run" else 0.0,
           "hardware": run.provenance().get("hardware", ""),           # the machine the minutes are from
           "best_val_acc_during_training": done["best_val_acc"], **score(net, cfg, dataset)}
    if cv_recipe(name):                   # the assignment's relative-size prior on the fold (cv_size_table)
        row.update(cv_size_scores(run.path, cfg))
    if name in OPTICS_PAIR:               # the simulated MI factor by factor (ablation_table)
        row.update(ablation_scores(run.path))
    print(f"{name}: {row} ({time.time() - t:.0f} s)", flush=True)
    return row


def main(argv=None) -> int:
    from chromo.io import atomic_write_text

    ap = argparse.ArgumentParser(prog="python -m chromo.experiments", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="variant names (or unique prefixes) to run")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--record", action="store_true", help="from the variant runs found here, write curves.csv "
                    "and fill the hardware column where it is empty (runs trained before either existed); train nothing")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(VARIANTS))
        return 0
    cfg = config_mod.load("cpu")
    results = cfg.results()
    if a.record:
        curves = with_curves(load_curves(cfg), VARIANTS)
        atomic_write_text(results / "curves.csv", curves.to_csv(index=False))
        exp = with_hardware(load(cfg))
        atomic_write_text(results / "experiments.csv", exp.to_csv(index=False))
        print(f"wrote {results / 'curves.csv'} ({curves['variant'].nunique()} variants) and the hardware column "
              f"({exp['hardware'].notna().sum()} of {len(exp)} rows known)")
        return 0
    unknown = [o for o in a.only or [] if not any(n.startswith(o) for n in VARIANTS)]
    if unknown:
        ap.error(f"no variant named {unknown}; see --list")
    # an exact name selects itself only; otherwise a prefix selects every variant it starts
    names = [n for n in VARIANTS if not a.only or n in a.only
             or any(n.startswith(o) and o not in VARIANTS for o in a.only)]
    out = results / "experiments.csv"
    old = load(cfg)
    curves = load_curves(cfg)
    for n in names:
        row = pd.DataFrame([run_variant(n)])
        old = pd.concat([old[old["variant"] != n], row], ignore_index=True)
        old["order"] = old["variant"].map({v: i for i, v in enumerate(VARIANTS)})
        old = old.sort_values("order").drop(columns="order")
        curves = with_curves(curves, [n])
        atomic_write_text(out, old.to_csv(index=False))   # after each variant: an interruption keeps the rest
        atomic_write_text(results / "curves.csv", curves.to_csv(index=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
