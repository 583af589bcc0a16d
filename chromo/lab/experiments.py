"""The recipe experiments behind the cpu profile, scored on the VALIDATION split only.

Each experiment is one YAML file in ``configs/experiments/``, complete in itself: a frozen base profile
(``base:``, a file in ``configs/experiments/base/``) and the settings it changes, with the experiment's own
keys: ``dataset``, ``recipe`` (what it tries; seed repeats share it) and ``seed``, and optionally ``model``
(default the paper's EResNet), ``scores``
(another experiment whose run it scores, with its own scoring settings such as ``tta: false``), ``folds``
(K-fold cross-validation over the train and validation cells) and ``factors: true`` (the simulated MI
scored factor by factor). Its runs go to ``runs/experiments/<file name>/``, so changing ``configs/cpu.yaml``
changes no experiment. One row per experiment (per fold) goes to ``book/results/cpu/experiments.csv``
and each trained run's validation curve to ``curves.csv`` beside it; the book's chapters read those tables.
Run them alone on the machine (the minutes are part of the result):

    python -m chromo.lab.experiments --list
    python -m chromo.lab.experiments [--only NAME ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from chromo import PAPER_MODEL
from chromo import config as config_mod
from chromo.io import atomic_write_text, project_root

FOLDER = Path("configs") / "experiments"
# an experiment's own keys, beside the settings
KEYS = ("dataset", "model", "recipe", "scores", "folds", "factors")
CURVE_COLUMNS = ["experiment", "fold", "epoch", "epoch_s", "val_acc"]


@dataclass
class Experiment:
    name: str                   # its file name without .yaml: names its runs and its rows
    dataset: str
    recipe: str
    cfg: config_mod.Config      # the resolved settings (runs_dir: runs/experiments/<name>)
    model: str = PAPER_MODEL
    scores: str | None = None   # another experiment whose run this one scores, with cfg's scoring settings
    folds: int | None = None    # K: cross-validation, one run per fold
    factors: bool = False       # the simulated MI also scored factor by factor (evaluate.mi_ablation)

    def configs(self) -> list[tuple[int | None, config_mod.Config]]:
        """(fold, settings) of each of its runs: one, or one per fold (val_fold [k, K])."""
        if not self.folds:
            return [(None, self.cfg)]
        return [(k + 1, dataclasses.replace(
            self.cfg, runs_dir=str(Path(self.cfg.runs_dir) / f"fold-{k + 1}"),
            data=dataclasses.replace(self.cfg.data, val_fold=[k, self.folds]))) for k in range(self.folds)]


def names() -> list[str]:
    """Every experiment, by file name."""
    return sorted(p.stem for p in (project_root() / FOLDER).glob("*.yaml"))


def load(name: str) -> Experiment:
    """An experiment file by name, its settings checked."""
    path = project_root() / FOLDER / f"{name}.yaml"
    values, _ = config_mod.read_values(path)
    own = {k: values.pop(k, None) for k in KEYS}
    if own["dataset"] not in config_mod.DATASETS or not own["recipe"]:
        raise config_mod.ConfigError(f"{path}: an experiment needs a dataset "
                                     f"({', '.join(config_mod.DATASETS)}) and a recipe")
    values["runs_dir"] = str(Path("runs") / "experiments" / name)
    cfg = config_mod.from_values(values, str(path))
    return Experiment(name, own["dataset"], own["recipe"], cfg, own["model"] or PAPER_MODEL, own["scores"],
                      own["folds"], bool(own["factors"]))


def profile_fine_tuning(cfg) -> str | None:
    """The cross-validated experiment (one with `folds`) whose BioImLab fine-tuning is the profile's own: the
    paper's EResNet with the same learning rate, epochs, optics augmentation and batch size for BioImLab's
    run; None if none is."""
    def seen(c):
        return (c.lr_for(PAPER_MODEL, "bioimlab"), c.epochs_for(PAPER_MODEL, "bioimlab"), c.training.optics,
                c.training.batch_size)
    mine = seen(cfg)
    for name in names():
        e = load(name)
        if e.folds and e.dataset == "bioimlab" and e.model == PAPER_MODEL and seen(e.cfg) == mine:
            return name
    return None


def trained_run(exp: Experiment, cfg, progress: bool = False):
    """The run an experiment scores: its own (trained if missing) or that of the experiment it names."""
    from chromo.train import train

    if exp.scores:
        source = load(exp.scores)
        return train(source.cfg, source.dataset, source.model, progress)
    return train(cfg, exp.dataset, exp.model, progress)


def score(net, cfg, dataset: str, split: str = "val") -> dict:
    """Mean per-cell accuracy (eq. 9) of DCNN and of the karyotype assignment on a split, for the native
    queries and, for pki3, the simulated MI ones. The assignment is on -log p alone: this table compares
    recipes of the network; the relative-size prior is chosen and measured on its own (chapter 8)."""
    from chromo.data.loader import NATIVE_QUERY, mi_queries, prepare
    from chromo.evaluate import dcnn_and_assignment
    from chromo.inference import predict

    s = prepare(cfg, dataset, progress=False).split(split)
    queries = {NATIVE_QUERY[dataset]: s.images}
    if NATIVE_QUERY[dataset] == "ki":
        queries["mi"] = mi_queries(s.images, cfg)
    m = cfg.matching
    return {f"{split}_{q}_{k}": v for q, imgs in queries.items()
            for k, v in dcnn_and_assignment(predict(net, imgs, cfg)[0], s.labels, s.cells, m.extra_penalty,
                                            m.missing_penalty).items()}


def extra_scores(exp: Experiment, run, cfg) -> dict:
    """A fold's assignment at each weight of the relative-size prior (size_w<weight>, the size model fitted on
    the fold's own training cells), and the simulated MI factor by factor (val_factors_<factors>_<method>)."""
    from chromo.evaluate import MI_ABLATION, mi_ablation, size_prior_sweep
    from chromo.inference import extract_features

    out = {}
    if exp.folds:
        extract_features(run, "val", progress=False)
        sw = size_prior_sweep(run, extra_penalty=cfg.matching.extra_penalty,
                              missing_penalty=cfg.matching.missing_penalty)
        sw = sw[sw["query"] == "mi"]                   # BioImLab's own (microscope) queries
        out.update({f"size_w{w:g}": float(a) for w, a in zip(sw["weight"], sw["accuracy"])})
    if exp.factors:
        t = mi_ablation(run.path, split="val", prior=False)
        out.update({f"val_factors_{'_'.join(MI_ABLATION[f]) or 'none'}_{m}": float(t.loc[f, col])
                    for f in t.index for m, col in (("dcnn", "DCNN"), ("assign", "assignment"))})
    return out


def rows(exp: Experiment) -> tuple[list[dict], pd.DataFrame]:
    """Train (or reuse) and score every run of an experiment: its rows of the table and its curves."""
    from chromo import device

    out, curves = [], []
    for fold, cfg in exp.configs():
        t = time.time()
        run = trained_run(exp, cfg)
        net, _ = run.load_model(device())
        done = run.done()
        row = {"experiment": exp.name, "dataset": exp.dataset, "model": exp.model, "recipe": exp.recipe,
               "seed": cfg.seed, "fold": fold, "scores": exp.scores or "",
               "epochs": cfg.epochs_for(exp.model, exp.dataset),
               "train_min": 0.0 if exp.scores else round(done["train_s"] / 60, 1),
               "hardware": run.provenance().get("hardware", ""),
               "best_val_acc_during_training": done["best_val_acc"], **score(net, cfg, exp.dataset),
               **extra_scores(exp, run, cfg)}
        out.append(row)
        if not exp.scores:
            curves.append(run.log()[CURVE_COLUMNS[2:]].assign(experiment=exp.name, fold=fold)[CURVE_COLUMNS])
        print(f"{exp.name}{'' if fold is None else f', fold {fold}'}: {row} ({time.time() - t:.0f} s)",
              flush=True)
    return out, pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)


def replace_rows(table: pd.DataFrame, name: str, new: pd.DataFrame) -> pd.DataFrame:
    """`table` with the rows of experiment `name` replaced by `new`, sorted by experiment, fold, epoch."""
    keep = table[table["experiment"] != name] if len(table) else table
    out = pd.concat([keep, new], ignore_index=True) if len(keep) else new
    by = [c for c in ("experiment", "fold", "epoch") if c in out]
    return out.sort_values(by, ignore_index=True, na_position="first")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chromo.lab.experiments", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="experiment names (files in configs/experiments) to run")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args(argv)
    if a.list:
        for n in names():
            e = load(n)
            print(f"{n}: {e.dataset}, {e.recipe}, seed {e.cfg.seed}" + (f", {e.folds} folds" if e.folds
                                                                        else ""))
        return 0
    unknown = sorted(set(a.only or []) - set(names()))
    if unknown:
        ap.error(f"no experiment file for {unknown}; see --list")
    results = config_mod.load("cpu").results()
    table_path, curves_path = results / "experiments.csv", results / "curves.csv"
    table = pd.read_csv(table_path) if table_path.exists() else pd.DataFrame(columns=["experiment"])
    curves = pd.read_csv(curves_path) if curves_path.exists() else pd.DataFrame(columns=CURVE_COLUMNS)
    for name in a.only or names():
        new, curve = rows(load(name))
        table = replace_rows(table, name, pd.DataFrame(new))
        curves = replace_rows(curves, name, curve)
        # after each: an interruption keeps the rest
        atomic_write_text(table_path, table.to_csv(index=False))
        atomic_write_text(curves_path, curves.to_csv(index=False))
    print(f"wrote {table_path} and {curves_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
