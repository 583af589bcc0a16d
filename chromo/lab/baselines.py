"""The baselines of Table 1 at an equal training budget (chapter 07): the EResNet trained on their budget
(the experiment EQUAL_BUDGET), each baseline's learning rate chosen on the validation cells (the experiments
pki3-<model>-lr<rate>), and what training VGG16 on that budget would cost on this machine."""
from __future__ import annotations

import pandas as pd

from chromo import BASELINES, PAPER_MODEL
from chromo.evaluate import dcnn_and_assignment
from chromo.inference import extract_features
from chromo.lab.experiments import load, names
from chromo.run import Run

EQUAL_BUDGET = "pki3-equal-budget"      # the experiment: the EResNet trained on the baselines' budget


def equal_budget_run(progress: bool = False) -> Run | None:
    """The EResNet trained on the baselines' budget (the experiment EQUAL_BUDGET) with its validation and test
    features (extracted once if the run exists without them), or None where it is not trained here."""
    e = load(EQUAL_BUDGET)
    run = Run.of(e.cfg, e.dataset, e.model)
    if not run.is_finished():
        return None
    for split in ("val", "test"):
        if not run.has_features(split, "ki"):
            extract_features(run, split, progress, queries=("ki",))
    return run


def _train_min(run: Run) -> float:
    return round(run.done().get("train_s", float("nan")) / 60, 1) if run.is_finished() else float("nan")


def equal_budget_table(cfg, experiments: pd.DataFrame, equal_budget: Run | None = None) -> pd.DataFrame:
    """The pki3 baselines and the EResNet at one training budget, on the validation cells (KI queries, mean
    per-cell accuracy, eq. 9; the assignment on -log p alone, as the experiments table scores it): the EResNet
    from its run `equal_budget` where given, else from its row of `experiments` (the experiments table), the
    baselines from the profile's runs. Index model; columns epochs, train min, learning rate, val KI DCNN,
    val KI assignment, source; NaN where absent (a model not trained)."""
    m, rows = cfg.matching, []

    def add(model, epochs, minutes, lr, feats, source, acc=None):
        if feats is not None:
            acc = dcnn_and_assignment(feats["logits"], feats["labels"], feats["cells"], m.extra_penalty,
                                      m.missing_penalty)
        acc = acc or {"dcnn": float("nan"), "assign": float("nan")}
        rows.append({"model": model, "epochs": epochs, "train min": minutes, "learning rate": lr,
                     "val KI DCNN": acc["dcnn"], "val KI assignment": acc["assign"], "source": source})

    e = experiments[experiments["experiment"] == EQUAL_BUDGET] if len(experiments) else experiments
    ecfg = load(EQUAL_BUDGET).cfg
    epochs, lr = ecfg.epochs_for(PAPER_MODEL, "pki3"), ecfg.lr_for(PAPER_MODEL, "pki3")
    if equal_budget is not None and equal_budget.has_features("val", "ki"):
        add(PAPER_MODEL, epochs, _train_min(equal_budget), lr, equal_budget.features("val", "ki"),
            f"experiment {EQUAL_BUDGET}")
    elif len(e):
        add(PAPER_MODEL, epochs, e["train_min"].iloc[0], lr, None,
            f"experiment {EQUAL_BUDGET} (its row of the experiments table)",
            {"dcnn": e["val_ki_dcnn"].iloc[0], "assign": e["val_ki_assign"].iloc[0]})
    else:
        add(PAPER_MODEL, epochs, float("nan"), lr, None, f"experiment {EQUAL_BUDGET}: not run")
    for model in BASELINES:
        run = Run(cfg.run_dir("pki3", model))
        trained = model in cfg.training.models.get("pki3", []) and run.has_features("val", "ki")
        add(model, cfg.epochs_for(model, "pki3") if trained else float("nan"), _train_min(run),
            cfg.lr_for(model, "pki3") if trained else float("nan"),
            run.features("val", "ki") if trained else None,
            f"{cfg.profile}/pki3/{model}" if trained else "not trained")
    return pd.DataFrame(rows).set_index("model")


def lr_table(cfg, experiments: pd.DataFrame, models=("alexnet", "resnet50")) -> pd.DataFrame:
    """Each baseline's learning rate as chosen on the validation cells: per model (rows) and rate of its
    experiments pki3-<model>-lr<rate> (columns, ascending), the validation DCNN on KI (mean per-cell accuracy,
    eq. 9) of the experiments table, NaN where the experiment has no row yet; and the column "profile's rate"
    (Config.lr_for)."""
    cells = {}
    for model in models:
        for name in (n for n in names() if n.startswith(f"pki3-{model}-lr")):
            e = load(name)
            row = experiments[experiments["experiment"] == name] if len(experiments) else experiments
            cells[(model, e.cfg.lr_for(model, "pki3"))] = float(row["val_ki_dcnn"].iloc[0]) if len(row) \
                else float("nan")
    t = pd.Series(cells, dtype=float).unstack() if cells else pd.DataFrame(index=list(models))
    t = t.reindex(index=list(models), columns=sorted(t.columns))
    t["profile's rate"] = [cfg.lr_for(model, "pki3") for model in models]
    return t


def training_cost(cfg, model: str, images_per_s: float, train_images: int,
                  budget_model: str = "alexnet", dataset: str = "pki3") -> dict:
    """What training `model` on the profile's equal budget would take: `budget_model`'s epochs
    (Config.epochs_for) of `train_images` training images at `images_per_s` (chromo.lab.bench.bench_train)."""
    epochs = cfg.epochs_for(budget_model, dataset)
    return {"model": model, "epochs": epochs, "train_images": int(train_images),
            "images_per_s": float(images_per_s), "minutes": epochs * train_images / images_per_s / 60}
