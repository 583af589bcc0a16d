"""One-time migration: the experiment variants of the old chromo.experiments as files in configs/experiments,
the experiments table and curves keyed by those files, each file's resolved settings checked against the old
variant's. Run once, then deleted."""
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

from chromo import config
from chromo.lab import experiments as E

ROOT = Path(__file__).resolve().parents[1]
OLD = json.load(open(sys.argv[1]))           # the old variants, dumped with the old code
RUN = "runs/experiments/{}/cpu/pki3/eresnet-u1c0"
P = "pki3: cpu profile"
SPEC = [  # old name, file, base, dataset, recipe, seed, settings, scores, extra keys
    (P, "pki3-profile", "profile", "pki3", "cpu profile", 0, {}, None, {"factors": True}),
    ("pki3: cpu profile, no flip averaging", "pki3-profile-no-tta", "profile", "pki3",
     "cpu profile, no flip averaging", 0, {"training": {"tta": False}}, "pki3-profile", {}),
    ("pki3: cpu profile, seed 1", "pki3-profile-seed1", "profile", "pki3", "cpu profile", 1, {}, None, {}),
    ("pki3: cpu profile, seed 2", "pki3-profile-seed2", "profile", "pki3", "cpu profile", 2, {}, None, {}),
    ("pki3: cpu profile, no optics augmentation", "pki3-no-optics", "profile", "pki3",
     "cpu profile, no optics augmentation", 0, {"training": {"optics": 0.0}}, None, {"factors": True}),
    ("pki3: 7 epochs", "pki3-seven-epochs", "seven-epochs", "pki3", "7 epochs", 0, {}, None, {}),
    ("pki3: 7 epochs, no flip averaging", "pki3-seven-epochs-no-tta", "seven-epochs", "pki3",
     "7 epochs, no flip averaging", 0, {"training": {"tta": False}}, "pki3-seven-epochs", {}),
    ("pki3: 7 epochs, seed 1", "pki3-seven-epochs-seed1", "seven-epochs", "pki3", "7 epochs", 1, {}, None, {}),
    ("pki3: 7 epochs, seed 2", "pki3-seven-epochs-seed2", "seven-epochs", "pki3", "7 epochs", 2, {}, None, {}),
    ("pki3: 7 epochs, optics blur scaled with the canvas", "pki3-seven-epochs-blur-scaled", "seven-epochs", "pki3",
     "7 epochs, optics blur scaled with the canvas", 0, {"training": {"optics_blur_scaled": True}}, None, {}),
    ("pki3: cpu profile at the baselines' budget (2.1 epochs)", "pki3-equal-budget", "profile", "pki3",
     "cpu profile at the baselines' budget (2.1 epochs)", 0, {"training": {"epochs": {"default": 2.1}}}, None, {}),
    ("pki3: not straightened", "pki3-not-straightened", "not-straightened", "pki3", "not straightened", 0, {}, None, {}),
    ("pki3: not straightened, seed 1", "pki3-not-straightened-seed1", "not-straightened", "pki3", "not straightened",
     1, {}, None, {}),
    ("pki3: not straightened, seed 2", "pki3-not-straightened-seed2", "not-straightened", "pki3", "not straightened",
     2, {}, None, {}),
    ("pki3: not straightened, at the baselines' budget (2.1 epochs)", "pki3-not-straightened-equal-budget",
     "not-straightened", "pki3", "not straightened, at the baselines' budget (2.1 epochs)", 0,
     {"training": {"epochs": {"default": 2.1}}}, None, {}),
    ("pki3: 64 px canvas, 8 epochs", "pki3-square", "square", "pki3", "64 px canvas", 0, {}, None, {}),
    ("pki3: 64 px canvas, seed 1", "pki3-square-seed1", "square", "pki3", "64 px canvas", 1, {}, None, {}),
    ("pki3: 64 px canvas, seed 2", "pki3-square-seed2", "square", "pki3", "64 px canvas", 2, {}, None, {}),
    ("pki3: 64 px canvas, no optics augmentation", "pki3-square-no-optics", "square", "pki3",
     "64 px canvas, no optics augmentation", 0, {"training": {"optics": 0.0}}, None, {}),
    ("pki3: 64 px canvas, no optics augmentation, no vertical flips", "pki3-square-no-optics-no-vflip", "square",
     "pki3", "64 px canvas, no optics augmentation, no vertical flips", 0,
     {"training": {"optics": 0.0, "vflip": False}}, None, {}),
    ("pki3: 64 px canvas at the baselines' budget (2.1 epochs)", "pki3-square-equal-budget", "square", "pki3",
     "64 px canvas at the baselines' budget (2.1 epochs)", 0, {"training": {"epochs": {"default": 2.1}}}, None, {}),
    ("pki3: 64 px canvas, 12 epochs", "pki3-square-12-epochs", "square", "pki3", "64 px canvas, 12 epochs", 0,
     {"training": {"epochs": {"default": 12}}}, None, {}),
    ("pki3: 64 px canvas, no stem max-pool, 3 epochs", "pki3-square-no-maxpool", "square", "pki3",
     "64 px canvas, no stem max-pool, 3 epochs", 0,
     {"training": {"stem_maxpool": False, "epochs": {"default": 3}}}, None, {}),
    ("bioimlab: pki3 model unchanged", "bioimlab-pki3-model-unchanged", "profile", "bioimlab",
     "cpu profile's pki3 model unchanged", 0, {}, "pki3-profile", {}),
]
FROM = lambda e: {"training": {"init_from": {"bioimlab": RUN.format(e)}}}  # noqa: E731


def bio(old, stem, base, recipe, seed, source, more=None, scores=None):
    s = {**FROM(source)} if source else {}
    for g, v in (more or {}).items():
        s[g] = {**s.get(g, {}), **v}
    return (old, stem, base, "bioimlab", recipe, seed, s, scores, {})


SPEC += [
    bio("bioimlab: cpu profile (transfer from pki3)", "bioimlab-profile", "profile", "cpu profile", 0, "pki3-profile"),
    bio("bioimlab: cpu profile, no flip averaging", "bioimlab-profile-no-tta", "profile",
        "cpu profile, no flip averaging", 0, "pki3-profile", {"training": {"tta": False}}, "bioimlab-profile"),
    bio("bioimlab: cpu profile, seed 1", "bioimlab-profile-seed1", "profile", "cpu profile", 1, "pki3-profile"),
    bio("bioimlab: cpu profile, seed 2", "bioimlab-profile-seed2", "profile", "cpu profile", 2, "pki3-profile"),
    bio("bioimlab: the 7-epoch pki3 model unchanged", "bioimlab-seven-epochs-pki3-model-unchanged", "seven-epochs",
        "7-epoch pki3 model unchanged", 0, None, None, "pki3-seven-epochs"),
    bio("bioimlab: from the 7-epoch pki3 run", "bioimlab-seven-epochs", "seven-epochs", "7 epochs", 0,
        "pki3-seven-epochs"),
    bio("bioimlab: from the 7-epoch pki3 run, no flip averaging", "bioimlab-seven-epochs-no-tta", "seven-epochs",
        "7 epochs, no flip averaging", 0, "pki3-seven-epochs", {"training": {"tta": False}}, "bioimlab-seven-epochs"),
    bio("bioimlab: from the 7-epoch pki3 run, seed 1", "bioimlab-seven-epochs-seed1", "seven-epochs", "7 epochs", 1,
        "pki3-seven-epochs"),
    bio("bioimlab: from the 7-epoch pki3 run, seed 2", "bioimlab-seven-epochs-seed2", "seven-epochs", "7 epochs", 2,
        "pki3-seven-epochs"),
    bio("bioimlab: 7 epochs, optics blur scaled with the canvas (in its pki3 source too)",
        "bioimlab-seven-epochs-blur-scaled", "seven-epochs", "7 epochs, optics blur scaled with the canvas", 0,
        "pki3-seven-epochs-blur-scaled", {"training": {"optics_blur_scaled": True}}),
    bio("bioimlab: not straightened (transfer from pki3)", "bioimlab-not-straightened", "not-straightened",
        "not straightened", 0, "pki3-not-straightened"),
    bio("bioimlab: not straightened, seed 1", "bioimlab-not-straightened-seed1", "not-straightened",
        "not straightened", 1, "pki3-not-straightened"),
    bio("bioimlab: not straightened, seed 2", "bioimlab-not-straightened-seed2", "not-straightened",
        "not straightened", 2, "pki3-not-straightened"),
    bio("bioimlab: straightened, from the unstraightened pki3 model", "bioimlab-straightened-from-not-straightened",
        "seven-epochs", "straightened, from the unstraightened pki3 model", 0, "pki3-not-straightened"),
    bio("bioimlab: 64 px canvas (transfer from pki3)", "bioimlab-square", "square", "64 px canvas", 0, "pki3-square"),
    bio("bioimlab: 64 px canvas, seed 1", "bioimlab-square-seed1", "square", "64 px canvas", 1, "pki3-square"),
    bio("bioimlab: 64 px canvas, seed 2", "bioimlab-square-seed2", "square", "64 px canvas", 2, "pki3-square"),
    bio("bioimlab: 64 px canvas, scratch, no orientation, no optics augmentation",
        "bioimlab-square-scratch-no-orient", "square", "64 px canvas, from scratch, no orientation, no optics "
        "augmentation", 0, None, {"data": {"orient": False}, "training": {"init_from": None, "vflip": False,
                                                                           "tta": False, "optics": 0.0}}),
    bio("bioimlab: 64 px canvas, scratch, orientation, no optics augmentation", "bioimlab-square-scratch",
        "square", "64 px canvas, from scratch, no optics augmentation", 0, None,
        {"training": {"init_from": None, "optics": 0.0}}),
    bio("bioimlab: 64 px canvas, no optics augmentation in fine-tuning", "bioimlab-square-no-optics-in-fine-tuning",
        "square", "64 px canvas, no optics augmentation in the fine-tuning", 0, "pki3-square",
        {"training": {"optics": 0.0}}),
    bio("bioimlab: 64 px canvas, no optics augmentation (nor in its pki3 source)", "bioimlab-square-no-optics",
        "square", "64 px canvas, no optics augmentation (nor in its pki3 source)", 0, "pki3-square-no-optics",
        {"training": {"optics": 0.0}}),
    bio("bioimlab: 64 px canvas, no optics augmentation, seed 1", "bioimlab-square-no-optics-seed1", "square",
        "64 px canvas, no optics augmentation (nor in its pki3 source)", 1, "pki3-square-no-optics",
        {"training": {"optics": 0.0}}),
    bio("bioimlab: 64 px canvas, no optics augmentation, seed 2", "bioimlab-square-no-optics-seed2", "square",
        "64 px canvas, no optics augmentation (nor in its pki3 source)", 2, "pki3-square-no-optics",
        {"training": {"optics": 0.0}}),
]
CV = {  # old recipe: file, learning rate, epochs, more settings
    "learning rate 0.05, 20 epochs": ("bioimlab-cv-lr0.05", 0.05, 20, {}),
    "learning rate 0.02, 20 epochs": ("bioimlab-cv-lr0.02", 0.02, 20, {}),
    "learning rate 0.05, 30 epochs": ("bioimlab-cv-lr0.05-30-epochs", 0.05, 30, {}),
    "learning rate 0.01, 20 epochs": ("bioimlab-cv-lr0.01", 0.01, 20, {}),
    "learning rate 0.02, 20 epochs, no optics augmentation": ("bioimlab-cv-lr0.02-no-optics", 0.02, 20,
                                                              {"optics": 0.0}),
    "learning rate 0.02, 20 epochs, batch 32": ("bioimlab-cv-lr0.02-batch32", 0.02, 20, {"batch_size": 32}),
    "learning rate 0.02, 30 epochs": ("bioimlab-cv-lr0.02-30-epochs", 0.02, 30, {}),
}


def write(stem, base, dataset, recipe, seed, settings, scores, extra, title):
    doc = {"base": f"base/{base}.yaml", "dataset": dataset, "recipe": recipe, "seed": seed}
    if scores:
        doc["scores"] = scores
    doc.update(extra)
    doc.update(settings)
    text = f"# {title}\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=110)
    (ROOT / "configs" / "experiments" / f"{stem}.yaml").write_text(text)


def flat(d: dict) -> dict:
    out = {k: v for k, v in d.items() if not isinstance(v, dict) or k not in config.GROUPS}
    for g in config.GROUPS:
        out.update(d.get(g, {}))
    return out


def resolved(values: dict, dataset: str, model="eresnet-u1c0") -> dict:
    """Old (flat) or new (nested, flattened) settings as a run resolves them."""
    v = dict(values)
    lr = v.pop("lr")
    lr = (v.pop("lr_by_dataset", None) or {}).get(dataset, lr) if not isinstance(lr, dict) else \
        config.run_value(lr, model, dataset, 0.05)
    epochs = config.run_value(v.pop("epochs"), model, dataset, 10)
    for k in ("models", "runs_dir", "results_dir", "cache_dir", "threads", "profile", "adapt_baselines",
              "init_from", "size_prior"):
        v.pop(k, None)
    v["split_fractions"] = list(v["split_fractions"])
    v["canvas"] = list(v["canvas"]) if isinstance(v["canvas"], (list, tuple)) else v["canvas"]
    return {**v, "lr": float(lr), "epochs": float(epochs)}


def main():
    old_names = {}
    for old, stem, base, dataset, recipe, seed, settings, scores, extra in SPEC:
        write(stem, base, dataset, recipe, seed, settings, scores, extra, old)
        old_names[old] = (stem, None)
    for recipe, (stem, lr, epochs, more) in CV.items():
        settings = {"training": {"init_from": {"bioimlab": RUN.format("pki3-profile")},
                                 "lr": {"default": 0.05, "bioimlab": lr},
                                 "epochs": {"default": 14, "bioimlab": epochs}, **more}}
        write(stem, "profile", "bioimlab", f"cross-validated fine-tuning: {recipe}", 0, settings, None,
              {"folds": 5}, f"bioimlab CV: {recipe}, 5 folds")
        for k in range(5):
            old_names[f"bioimlab CV: {recipe}, fold {k + 1} of 5"] = (stem, k + 1)
    assert set(old_names) == set(OLD), set(OLD) ^ set(old_names)
    bad = 0
    for old, (stem, fold) in old_names.items():
        exp = E.load(stem)
        cfg = dict(exp.configs())[fold]
        o = OLD[old]
        d = "pki3" if o["how"] == "pki3-model" else o["dataset"]
        a, b = resolved(o["cfg"], d), resolved(flat(cfg.to_dict()), d)
        if o["how"] == "no-tta":
            a["tta"] = False                       # the old row scored its run without flip averaging
        diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
        src_old = (o["cfg"]["init_from"] or {}).get(d)
        src_new = (cfg.training.init_from or {}).get(d)
        if diff:
            bad += 1
            print("DIFF", old, stem, diff)
        print(f"{old!r:90} -> {stem}{'' if fold is None else f' fold {fold}'}; source {src_old} -> {src_new}")
    print("differences:", bad)
    results = ROOT / "book" / "results" / "cpu"
    exp = pd.read_csv(results / "experiments.csv")
    meta = {old: E.load(stem) for old, (stem, _) in old_names.items()}
    new = exp.drop(columns=["changes", "scored"]).assign(
        experiment=exp["variant"].map(lambda n: old_names[n][0]), fold=exp["variant"].map(lambda n: old_names[n][1]),
        recipe=exp["variant"].map(lambda n: meta[n].recipe), scores=exp["variant"].map(lambda n: meta[n].scores or ""))
    new["seed"] = new["seed"].astype(int)
    front = ["experiment", "dataset", "recipe", "seed", "fold", "scores"]
    new = new[front + [c for c in new.columns if c not in front + ["variant"]]]
    new = new.sort_values(["experiment", "fold"], ignore_index=True, na_position="first")
    new["fold"] = new["fold"].astype("Int64")
    new.to_csv(results / "experiments.csv", index=False)
    curves = pd.read_csv(results / "curves.csv")
    curves = curves.assign(experiment=curves["variant"].map(lambda n: old_names[n][0]),
                           fold=curves["variant"].map(lambda n: old_names[n][1]))[E.CURVE_COLUMNS]
    curves = curves.sort_values(["experiment", "fold", "epoch"], ignore_index=True, na_position="first")
    curves["fold"] = curves["fold"].astype("Int64")
    curves.to_csv(results / "curves.csv", index=False)
    json.dump(old_names, open("/work/notes/old_names.json", "w"), indent=1)


main()
