"""The reproducibility chapter's tables (notebooks/15_reproducibility), each generated from records, never
typed: the profiles (configs/*.yaml), the runs of a profile with their provenance, the main job's minutes
(metrics.json), and what each choice of the cpu profile's recipe measured on the validation cells (the
experiments table that ``python -m chromo.lab.experiments`` writes). A value that is absent reads as words.
"""
from __future__ import annotations

import pandas as pd

from chromo import PAPER_MODEL
from chromo import config as config_mod
from chromo.book import paper
from chromo.book.recognition import DASH, cv_show, cv_size_table, cv_table, seed_spread, text
from chromo.data.canvas import canvas_text
from chromo.io import rel
from chromo.run import Run

# the profiles in the order the chapter lists them (others after them, by name), and what each is for
ORDER = ("smoke", "cpu", "gpu", "gpu-toy")
PURPOSE = {"smoke": "tests and the nbval regression: every code path on a few cells; never a result",
           "cpu": "the reference run of this book, on a 2-core CPU",
           "gpu": "the paper's scale, for a GPU machine",
           "gpu-toy": "the gpu profile's models on a few cells, in the tests; never a result"}
# the validation accuracies of the experiments table, as the chapter's columns name them
MEASURES = {"val_ki_dcnn": "KI DCNN", "val_ki_assign": "KI assignment", "val_mi_dcnn": "MI DCNN",
            "val_mi_assign": "MI assignment"}
# each choice of the cpu profile's recipe and the experiment recipes that measured it: (setting, data sets,
# the recipe with the profile's choice, the same recipe without it); the rows of choice_table
BOTH = ("pki3", "bioimlab")
CHOICES = (
    ("orientation (with vertical flips and flip averaging)", ("bioimlab",),
     "64 px canvas, from scratch, no optics augmentation",
     "64 px canvas, from scratch, no orientation, no optics augmentation"),
    ("vertical flips in training", ("pki3",), "64 px canvas, no optics augmentation",
     "64 px canvas, no optics augmentation, no vertical flips"),
    ("flip averaging at inference", BOTH, "cpu profile", "cpu profile, no flip averaging"),
    ("optics augmentation, on the square", ("pki3",), "64 px canvas", "64 px canvas, no optics augmentation"),
    ("optics augmentation, on the square", ("bioimlab",), "64 px canvas",
     "64 px canvas, no optics augmentation (nor in its pki3 source)"),
    ("optics augmentation, in the profile", ("pki3",), "cpu profile", "cpu profile, no optics augmentation"),
    ("optics blur not scaled with the canvas", BOTH, "7 epochs",
     "7 epochs, optics blur scaled with the canvas"),
    ("tall canvas (7 epochs against the square's 8)", BOTH, "not straightened", "64 px canvas"),
    ("straightening", BOTH, "7 epochs", "not straightened"),
    ("the profile's epochs", ("pki3",), "cpu profile", "7 epochs"),
    ("the profile's epochs, not the baselines' budget", ("pki3",), "cpu profile",
     "cpu profile at the baselines' budget (2.1 epochs)"),
    ("BioImLab started from the pki3 model", ("bioimlab",),
     "64 px canvas, no optics augmentation (nor in its pki3 source)",
     "64 px canvas, from scratch, no optics augmentation"),
    ("BioImLab fine-tuned", ("bioimlab",), "cpu profile", "cpu profile's pki3 model unchanged"),
)


def profile_names(folder=None) -> list[str]:
    """The profiles, one per configs/*.yaml: those of ORDER first, in its order, then the others by name."""
    folder = folder or config_mod.project_root() / "configs"
    found = sorted(p.stem for p in folder.glob("*.yaml"))
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def models_text(models: dict) -> str:
    """'pki3: eresnet-u1c0, alexnet; bioimlab: eresnet-u1c0', the Extended Block variants of Table 4 (an
    EResNet other than the paper's) counted rather than named."""
    parts = []
    for d, ms in models.items():
        variants = [m for m in ms if m.startswith("eresnet") and m != PAPER_MODEL]
        named = [m for m in ms if m not in variants]
        if variants:
            named.insert(1 if PAPER_MODEL in named else 0, f"{len(variants)} Extended Block variants")
        parts.append(f"{d}: {', '.join(named)}")
    return "; ".join(parts)


def epochs_text(cfg) -> str:
    """The epochs of each run of a profile (Config.epochs_for), per data set: '40 each' where every model
    of the data set has the same, else 'eresnet-u1c0 14, alexnet 2.2'."""
    parts = []
    for d, ms in cfg.training.models.items():
        e = {m: cfg.epochs_for(m, d) for m in ms}
        same = len(set(e.values())) == 1
        parts.append(f"{d}: " + (f"{next(iter(e.values())):g} each" if same and len(e) > 1 else
                                 ", ".join(f"{m} {v:g}" for m, v in e.items())))
    return "; ".join(parts)


def profile_table(names=None) -> pd.DataFrame:
    """One row per profile (config.load of configs/<name>.yaml): what it is for, the EResNet backbone, the
    canvas, the cells it uses, the models it trains, their epochs, and whether a main job recorded results
    for it (results/<profile>/metrics.json)."""
    rows = []
    for name in names or profile_names():
        cfg = config_mod.load(name)
        cells = cfg.data.max_cells
        rows.append({"profile": name, "for": PURPOSE.get(name, DASH), "backbone": cfg.training.backbone,
                     "canvas": canvas_text(cfg.data.canvas),
                     "cells": "all" if not cells else ", ".join(f"{k} {v}" for k, v in cells.items()),
                     "models": models_text(cfg.training.models), "epochs": epochs_text(cfg),
                     "results": "recorded" if (cfg.results() / "metrics.json").exists() else "none recorded"})
    return pd.DataFrame(rows).set_index("profile")


def run_table(cfg) -> pd.DataFrame:
    """One row per run of a profile (its data set and model): its epochs (the profile's), training minutes,
    the minutes per epoch, the mean training images per second (log.csv), the best validation accuracy (DCNN),
    where it started (transfer), and the hardware and commit it was trained on (provenance.json); a run
    not finished reads "not trained" with where it was looked for."""
    rows = []
    for d, ms in cfg.training.models.items():
        for m in ms:
            run = Run.of(cfg, d, m)
            row = {"data set": d, "model": m}
            if not run.is_finished():
                rows.append({**row, "epochs": f"not trained: no finished run in {rel(run.path)}"})
                continue
            done, prov, log = run.done(), run.provenance(), run.log()
            src, path = cfg.source_run(d)
            minutes, epochs = done.get("train_s", float("nan")) / 60, cfg.epochs_for(m, d)
            speed = log["images_per_s"].mean() if "images_per_s" in log else None
            rows.append({**row, "epochs": text(epochs, "g", DASH),
                         "training minutes": text(minutes, ".1f", DASH),
                         "minutes per epoch": text(minutes / epochs, ".1f", DASH),
                         "images per s": text(speed, ".0f", DASH),
                         "best validation accuracy": text(done.get("best_val_acc"), ".3f", DASH),
                         "started from": src or (path.name if path else "scratch"),
                         "trained on": prov.get("hardware", DASH), "commit": prov.get("git_commit", DASH)})
    return pd.DataFrame(rows).set_index(["data set", "model"]).fillna(DASH)


def main_job_minutes(metrics: dict) -> dict:
    """The main job's minutes from metrics.json, rounded to 0.1: the notebooks of its last execution, the
    training they reused (finished runs not trained again), a fresh clone's estimate (both), the training of
    each run and all of it; with the hardware and commit of that execution. Absent entries read as None."""
    wall = metrics.get("wall_time_s", {})
    train = {k: v for k, v in metrics.get("training_time_s", {}).items() if v is not None}
    minutes = lambda s: None if s is None else round(float(s) / 60, 1)  # noqa: E731
    return {"notebooks": minutes(wall.get("total")), "executions": len([k for k in wall if k != "total"]),
            "reused": minutes(metrics.get("reused_training_s")),
            "fresh": minutes(metrics.get("fresh_main_job_estimate_s")),
            "training": minutes(sum(train.values())) if train else None,
            "runs": {k: minutes(v) for k, v in train.items()},
            "hardware": metrics.get("hardware"), "commit": metrics.get("git_commit")}


def _trained(rows: pd.DataFrame) -> pd.Series:
    """The rows that trained a run of their own (no `scores`: not a rescoring of another experiment's run)."""
    return rows["scores"].isna() | rows["scores"].eq("")


def recipe_rows(exp: pd.DataFrame, dataset: str, recipe: str) -> pd.DataFrame:
    """The rows of one recipe on one data set outside the cross-validation, indexed by seed."""
    if not len(exp):
        return pd.DataFrame()
    rows = exp[(exp["dataset"] == dataset) & (exp["recipe"] == recipe) & exp["fold"].isna()]
    return rows.drop_duplicates("seed").set_index("seed")


def compare(exp: pd.DataFrame, dataset: str, mine: str, other: str) -> dict | None:
    """Two recipes of a data set over the seeds both have: the seeds, each measure of MEASURES as
    (mean with `mine`, mean with `other`) where both have it, and each recipe's mean training minutes
    (NaN for a row that scored another experiment's run); None where they share no seed."""
    a, b = recipe_rows(exp, dataset, mine), recipe_rows(exp, dataset, other)
    seeds = a.index.intersection(b.index) if len(a) and len(b) else []
    if not len(seeds):
        return None
    out = {"seeds": len(seeds)}
    for col in MEASURES:
        if col in a and a.loc[seeds, col].notna().all() and b.loc[seeds, col].notna().all():
            out[col] = (float(a.loc[seeds, col].mean()), float(b.loc[seeds, col].mean()))

    def minutes(t):
        trained = t.loc[seeds][_trained(t.loc[seeds])] if "scores" in t else t.loc[seeds]
        return float(trained["train_min"].mean()) if len(trained) else float("nan")
    out["minutes"] = (minutes(a), minutes(b))
    return out


def choice_table(exp: pd.DataFrame, choices=CHOICES) -> pd.DataFrame:
    """One short row per choice of the recipe (CHOICES) whose two recipes are both in the experiments table:
    the setting, the data set, the two recipes, the seeds compared, and per validation measure the value
    with the profile's choice and, in brackets, its difference from the other recipe; the training minutes of
    both (DASH: none trained, the row scores another run). Empty when no choice was measured."""
    rows = []
    for setting, dataset, mine, other in ((s, d, m, o) for s, ds, m, o in choices for d in ds):
        c = compare(exp, dataset, mine, other)
        if c is None:
            continue
        row = {"setting": setting, "data set": dataset, "with it": mine, "without it": other,
               "seeds": c["seeds"]}
        for col, name in MEASURES.items():
            row[name] = f"{c[col][0]:.3f} ({c[col][0] - c[col][1]:+.3f})" if col in c else DASH
        row["minutes"] = " / ".join(text(m, ".1f", DASH) for m in c["minutes"])
        rows.append(row)
    cols = ["setting", "data set", "with it", "without it", "seeds", *MEASURES.values(), "minutes"]
    return pd.DataFrame(rows, columns=cols).set_index(["setting", "data set"])


def cv_choice_table(exp: pd.DataFrame, base: str | None, weight: float = 0.0) -> pd.DataFrame:
    """BioImLab's cross-validated fine-tunings (recognition.cv_table) against the profile's own (`base`),
    mean over the folds: DCNN and the assignment with the size prior at `weight` (its size_w column; the
    plain assignment where that is absent), each with its mean difference from `base` fold by fold, and the
    training minutes per fold. Empty without a base or folds."""
    cols = ["recipe", "folds", "DCNN", "DCNN vs the profile's", "assignment", "assignment vs the profile's",
            "minutes per fold"]
    if base is None or not len(exp) or exp["fold"].isna().all():
        return pd.DataFrame(columns=cols)
    size_col = f"size_w{weight:g}"
    cv = cv_show(cv_table(exp, base, size_col if size_col in exp else "val_mi_assign"))
    out = pd.DataFrame({
        "recipe": cv["recipe"], "folds": cv["folds"].astype(int),
        "DCNN": [text(v, ".4f", DASH) for v in cv["dcnn"]],
        "DCNN vs the profile's": [DASH if n == base else text(v, "+.4f", DASH)
                                  for n, v in cv["dcnn vs base"].items()],
        "assignment": [text(v, ".4f", DASH) for v in cv["assign"]],
        "assignment vs the profile's": [DASH if n == base else text(v, "+.4f", DASH)
                                        for n, v in cv["assign vs base"].items()],
        "minutes per fold": [text(v, ".1f", DASH) for v in cv["train_min"]]}, index=cv.index)
    return out.sort_values("recipe")[cols]


def size_weight_table(exp: pd.DataFrame, base: str | None) -> pd.DataFrame:
    """The size prior's weight on BioImLab's cross-validation folds of the profile's fine-tuning (`base`):
    recognition.cv_size_table as text; empty without it."""
    t = cv_size_table(exp, base) if base else pd.DataFrame()
    if not len(t):
        return pd.DataFrame(columns=["folds", "assignment", "vs off"])
    return pd.DataFrame({"folds": t["folds"].astype(int).to_numpy(),
                         "assignment": [text(v, ".4f") for v in t["assign"]],
                         "vs off": [text(v, "+.4f") for v in t["vs off"]]},
                        index=pd.Index([f"{w:g}" for w in t["weight"]], name="weight"))


def spread_table(exp: pd.DataFrame) -> pd.DataFrame:
    """Each recipe trained with two seeds or more (recognition.seed_spread, native queries): per data set
    and recipe the seeds and 'mean (sd)' of the validation DCNN and assignment, and the mean training
    minutes per seed."""
    sd = seed_spread(exp)
    if not len(sd):
        return pd.DataFrame(columns=["seeds", "DCNN", "assignment", "minutes per seed"])
    trained = exp[_trained(exp) & exp["fold"].isna()]
    rows = []
    for (d, recipe), g in sd.groupby(["dataset", "recipe"], sort=False):
        by = g.set_index("method")
        def cell(m, by=by):
            return f"{by.loc[m, 'mean']:.3f} ({by.loc[m, 'sd']:.3f})" if m in by.index else DASH
        minutes = trained[(trained["dataset"] == d) & (trained["recipe"] == recipe)]["train_min"].mean()
        rows.append({"data set": d, "recipe": recipe, "seeds": int(by["seeds"].max()), "DCNN": cell("dcnn"),
                     "assignment": cell("assign"), "minutes per seed": text(minutes, ".1f", DASH)})
    return pd.DataFrame(rows).set_index(["data set", "recipe"]).sort_index()


def versions_table(cfg, current: dict) -> pd.DataFrame:
    """Per package: its version in this execution (`current`, chromo.io.versions()) and the versions the
    profile's finished runs were trained with (provenance.json), 'the same' where all agree with it."""
    trained = {}
    for d, ms in cfg.training.models.items():
        for m in ms:
            run = Run.of(cfg, d, m)
            if run.is_finished():
                for k, v in run.provenance().get("versions", {}).items():
                    trained.setdefault(k, set()).add(str(v))
    rows = []
    for k in dict.fromkeys([*current, *trained]):
        mine, theirs = str(current.get(k, DASH)), sorted(trained.get(k, set()))
        rows.append({"package": k, "this execution": mine,
                     "the runs": DASH if not theirs else "the same" if theirs == [mine]
                     else ", ".join(theirs)})
    return pd.DataFrame(rows).set_index("package")


def _on(flag: bool, text_on: str, text_off: str) -> str:
    return text_on if flag else text_off


def deviations(cfg, paper_data: str) -> pd.DataFrame:
    """Every departure of a profile from the paper, one short row each: what the paper does (`paper_data`:
    chromo.book.paper.PAPER["data"]), what the profile does (from its settings), and why."""
    t, d, m = cfg.training, cfg.data, cfg.matching
    every = [x for ms in t.models.values() for x in ms]
    rows = [
        ("data", paper_data, "public pki3 (G-band karyogram cuts) and BioImLab (Q-band microscope cuts), "
         "split by cell (pki3 by slide)", "the paper's data are not public; pki3's MI queries are simulated"),
        ("backbone", "ResNet-50", t.backbone, "the CPU budget; the gpu profile keeps ResNet-50"),
        ("what the network is shown", "the karyotype cut as it is",
         f"{canvas_text(d.canvas)} canvas, one scale per data set"
         + _on(d.orient, ", upright", "") + _on(d.straighten, ", straightened", ""),
         "microscope cuts lie at any angle and bend (measured above)"),
        ("training budget", "long training on a four-GPU workstation", epochs_text(cfg),
         "the main job's minutes; the baselines get about equal minutes (the runs table)"),
        ("VGG16", "a baseline", _on("vgg16" in every, "trained", "not trained"),
         "too slow for the CPU budget to leave chance level; the gpu profile trains it"),
        ("AlexNet and VGG16 layers", "torchvision's layouts",
         _on(t.adapt_baselines, "BatchNorm after every convolution, AlexNet's stem at stride 2", "the same"),
         "trained from scratch on a small canvas, the plain layouts stayed at chance level"),
        ("center-loss weight", f"alpha = {paper.METHOD['alpha']:g} from the first step",
         f"alpha ramps from 0 to {t.alpha:g} over {t.alpha_warmup_epochs:g} epochs"
         if t.alpha_warmup_epochs else f"alpha = {t.alpha:g} from the first step",
         "the constant weight from the first step slowed early learning in a probe"),
        ("center-loss scale", "eq. 2 without a factor 1/2", "Wen et al.'s 1/2, divided by the batch size",
         "as Wen et al.'s code; not measured"),
        ("softmax loss", "plain", f"label smoothing {t.label_smoothing:g}" if t.label_smoothing else "plain",
         "a recipe choice for short budgets"),
        ("schedule", "not stated", "warm-up, cosine decay, a fixed epoch budget"
         + ("" if t.patience is None else f", early stop after {t.patience} epochs without gain"),
         "a small validation split made early stopping a coin toss"),
        ("flips", "horizontal", "horizontal" + _on(t.vflip, " and vertical", "")
         + _on(t.tta, "; inference averages the four flips", ""),
         "after orientation, which end is up is open"),
        ("optics augmentation", "none",
         f"a share of {t.optics:g} of the training images" if t.optics else "none",
         "blurred, down-sampled and noised like a microscope image (measured above)"),
        ("initial weights", "not stated", "from scratch" + "".join(
            f"; {k} from {v}" for k, v in (t.init_from or {}).items() if v),
         "nothing is downloaded; transfer measured above"),
        ("arithmetic, batch", "not stated", _on(t.bf16, "bf16 autocast", "float32")
         + _on(t.channels_last, ", channels-last", "") + f", batch {t.batch_size}", "CPU throughput"),
        ("beta, checkpoints", "chosen on the test images",
         f"beta = {m.beta:g} (the paper's {paper.METHOD['beta']}); the "
         "checkpoint of best validation accuracy", "the test split is used once, for the reported numbers"),
        ("Extended Block variants", "trained end to end",
         _on(any(x.startswith("eresnet") and x != PAPER_MODEL for x in every), "trained end to end",
             "heads on the frozen EResNet backbone (chapter 13)"), "each variant is a full training run"),
        ("karyotype assignment", "(beyond the paper)", "relative-size prior: " + (", ".join(
            f"{k} {v:g}" for k, v in (m.size_prior or {}).items()) or "off"), "chosen on validation cells"),
    ]
    cols = ["what", "the paper", f"the {cfg.profile} profile", "why"]
    return pd.DataFrame(rows, columns=cols).set_index("what")


def formula_basis(table: pd.DataFrame) -> dict:
    """What a formula accuracy rests on, from a karyotype table of the assignment (evaluate.karyotype_table:
    one row per cell): the cells, the normal ones and their share (the formula accuracy of answering every
    cell "normal, right sex"), how many normal cells kept a normal formula and how many got it exactly
    (sex chromosomes included), and the abnormal ones: how many, how many got exactly, their true formulas
    (sorted) and how many have fewer or more than 46 chromosomes."""
    normal, ab = table[~table["abnormal"]], table[table["abnormal"]]
    return {"cells": len(table), "normal": len(normal),
            "normal_share": len(normal) / len(table) if len(table) else float("nan"),
            "normal_kept_normal": int((~normal["predicted_abnormal"]).sum()),
            "normal_right": int(normal["formula_correct"].sum()),
            "abnormal": len(ab), "abnormal_right": int(ab["formula_correct"].sum()),
            "abnormal_formulas": sorted(ab["true_formula"]),
            "fewer": int((ab["chromosomes"] < 46).sum()), "more": int((ab["chromosomes"] > 46).sum())}


# the profile's runs and the experiments that trained the same settings separately (for curve_agreement)
SAME_SETTINGS = {("pki3", PAPER_MODEL): "pki3-profile", ("bioimlab", PAPER_MODEL): "bioimlab-profile"}


def curve_agreement(cfg, curves: pd.DataFrame, pairs=SAME_SETTINGS) -> pd.DataFrame:
    """Each finished run of a profile beside the experiment that trained the same settings separately
    (curves.csv): the epochs both recorded and the largest difference of their validation accuracies at the
    same epoch (0: the same curve). Only pairs with both; empty without curves."""
    rows = []
    for (d, m), name in pairs.items():
        run = Run.of(cfg, d, m)
        if not len(curves) or not run.is_finished() or m not in cfg.training.models.get(d, []):
            continue
        theirs = curves[(curves["experiment"] == name) & curves["fold"].isna()].set_index("epoch")["val_acc"]
        mine = run.log().set_index("epoch")["val_acc"]
        both = mine.index.intersection(theirs.index)
        if len(both):
            rows.append({"run": f"{d}/{m}", "experiment": name, "epochs compared": len(both),
                         "largest difference": float((mine.loc[both] - theirs.loc[both]).abs().max())})
    return pd.DataFrame(rows, columns=["run", "experiment", "epochs compared", "largest difference"])
