"""The recipe experiments behind the cpu profile, scored on the VALIDATION split only.

Each variant is the cpu profile with a few settings changed (or one of its runs scored another way),
trained into ``runs/experiments/<variant>/``; one row per variant goes to
``book/results/cpu/experiments.csv``, which the reproducibility chapter shows. Choices are made on these
numbers, never on the test split. Run them alone on the machine (the minutes are part of the result):

    python -m chromo.experiments --list
    python -m chromo.experiments [--only NAME ...]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from chromo import config as config_mod

MODEL = "eresnet-u1c0"
PKI3_RUN = "runs/cpu/pki3/eresnet-u1c0"   # the cpu profile's pki3 run: the source of every transfer below

SCRATCH = {"init_from": None}
NO_ORIENT = {"orient": False, "vflip": False, "tta": False}
NO_OPTICS = {"optics": 0.0}
# the pki3 run of the recipe before the optics augmentation: the source of the BioImLab runs without it
PKI3_NO_OPTICS_RUN = "runs/experiments/pki3-no-optics-augmentation/cpu/pki3/eresnet-u1c0"
# the baselines' budget in configs/cpu.yaml (about 4 training minutes each here) in EResNet epochs: the
# EResNet trained on that budget is the fair partner of the baselines (chapter 07, the claims page)
EQUAL_BUDGET = "pki3: cpu profile at the baselines' budget (2.1 epochs)"
# the same recipe on a half-again larger budget: is the pki3 EResNet limited by its training minutes?
LONGER = "pki3: cpu profile, 12 epochs"
# band resolution at about the profile's training minutes: without the stem's max-pool every stage sees
# twice the resolution a side, at several times the cost per image
NO_MAXPOOL = "pki3: no stem max-pool, 3 epochs"
CURVES = (EQUAL_BUDGET, LONGER, NO_MAXPOOL)   # pki3 variants shown as accuracy against training minutes
# name: (dataset, settings changed from the cpu profile, how it is scored)
VARIANTS = {
    "pki3: cpu profile": ("pki3", {}, "run"),
    "pki3: cpu profile, no flip averaging": ("pki3", {}, "no-tta"),
    "pki3: no optics augmentation": ("pki3", NO_OPTICS, "run"),
    "pki3: no optics augmentation, no vertical flips": ("pki3", {**NO_OPTICS, "vflip": False}, "run"),
    "pki3: cpu profile, seed 1": ("pki3", {"seed": 1}, "run"),
    "pki3: cpu profile, seed 2": ("pki3", {"seed": 2}, "run"),
    EQUAL_BUDGET: ("pki3", {"epochs": {"default": 2.1}}, "run"),
    LONGER: ("pki3", {"epochs": {"default": 12}}, "run"),
    NO_MAXPOOL: ("pki3", {"stem_maxpool": False, "epochs": {"default": 3}}, "run"),
    "bioimlab: pki3 model unchanged": ("bioimlab", {}, "pki3-model"),
    "bioimlab: scratch, no orientation, no optics augmentation": (
        "bioimlab", {**SCRATCH, **NO_ORIENT, **NO_OPTICS}, "run"),
    "bioimlab: scratch, orientation, no optics augmentation": ("bioimlab", {**SCRATCH, **NO_OPTICS}, "run"),
    "bioimlab: cpu profile (transfer from pki3)": ("bioimlab", {}, "run"),
    "bioimlab: cpu profile, no flip averaging": ("bioimlab", {}, "no-tta"),
    "bioimlab: no optics augmentation in fine-tuning": (
        "bioimlab", {**NO_OPTICS, "init_from": {"bioimlab": PKI3_RUN}}, "run"),
    "bioimlab: no optics augmentation (nor in its pki3 source)": (
        "bioimlab", {**NO_OPTICS, "init_from": {"bioimlab": PKI3_NO_OPTICS_RUN}}, "run"),
    "bioimlab: cpu profile, seed 1": ("bioimlab", {"seed": 1, "init_from": {"bioimlab": PKI3_RUN}}, "run"),
    "bioimlab: cpu profile, seed 2": ("bioimlab", {"seed": 2, "init_from": {"bioimlab": PKI3_RUN}}, "run"),
    "bioimlab: no optics augmentation, seed 1": (
        "bioimlab", {**NO_OPTICS, "seed": 1, "init_from": {"bioimlab": PKI3_NO_OPTICS_RUN}}, "run"),
    "bioimlab: no optics augmentation, seed 2": (
        "bioimlab", {**NO_OPTICS, "seed": 2, "init_from": {"bioimlab": PKI3_NO_OPTICS_RUN}}, "run"),
}


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


def score(net, cfg, dataset: str, split: str = "val") -> dict:
    """Mean per-cell accuracy (eq. 9) of DCNN and of the karyotype assignment on a split, for the native
    queries and, for pki3, the simulated MI ones."""
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


def seed_spread(exp: pd.DataFrame) -> pd.DataFrame:
    """Seed-to-seed spread of the chosen setting (the cpu profile's runs with seeds 0, 1, 2 ...), on the
    validation split of its native queries: one row per dataset, mean, standard deviation and count of
    the DCNN and assignment accuracies (eq. 9)."""
    runs = exp[exp["variant"].str.contains("cpu profile") & exp["scored"].eq("run")] if len(exp) else exp
    rows = []
    for d, g in runs.groupby("dataset"):
        native = "ki" if d == "pki3" else "mi"
        for method in ("dcnn", "assign"):
            v = g[f"val_{native}_{method}"]
            rows.append({"dataset": d, "method": method, "seeds": len(v), "mean": v.mean(), "sd": v.std()})
    return pd.DataFrame(rows, columns=["dataset", "method", "seeds", "mean", "sd"])


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
           "best_val_acc_during_training": done["best_val_acc"], **score(net, cfg, dataset)}
    print(f"{name}: {row} ({time.time() - t:.0f} s)", flush=True)
    return row


def main(argv=None) -> int:
    from chromo.io import atomic_write_text

    ap = argparse.ArgumentParser(prog="python -m chromo.experiments", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="variant names (or unique prefixes) to run")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(VARIANTS))
        return 0
    unknown = [o for o in a.only or [] if not any(n.startswith(o) for n in VARIANTS)]
    if unknown:
        ap.error(f"no variant named {unknown}; see --list")
    # an exact name selects itself only; otherwise a prefix selects every variant it starts
    names = [n for n in VARIANTS if not a.only or n in a.only
             or any(n.startswith(o) and o not in VARIANTS for o in a.only)]
    out = config_mod.load("cpu").results() / "experiments.csv"
    old = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=["variant"])
    for n in names:
        row = pd.DataFrame([run_variant(n)])
        old = pd.concat([old[old["variant"] != n], row], ignore_index=True)
        old["order"] = old["variant"].map({v: i for i, v in enumerate(VARIANTS)})
        old = old.sort_values("order").drop(columns="order")
        atomic_write_text(out, old.to_csv(index=False))   # after each variant: an interruption keeps the rest
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
