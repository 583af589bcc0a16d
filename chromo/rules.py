"""One rule per setting of a profile: what a value of the right type must also satisfy, and the words that
say what the setting takes (chromo.config.check_values applies them)."""
from __future__ import annotations

import math
import re

from chromo import BACKBONES, BASELINES, DATASETS, EXTENDED

SPLITS = ("train", "val", "test")
DISTANCES = ("cosine", "euclid")


def _finite(lo=None, hi=None, lo_open=False, hi_open=False):
    def ok(v):
        return math.isfinite(v) and (lo is None or (v > lo if lo_open else v >= lo)) \
            and (hi is None or (v < hi if hi_open else v <= hi))
    return ok


def _run_key(k) -> bool:
    """'default', a data set, a model, or '<data set>/<model>' (Config.epochs_for, Config.lr_for)."""
    def model(m):
        return m in BASELINES or EXTENDED.match(m) is not None
    d, _, m = k.partition("/") if isinstance(k, str) else ("", "", "")
    return k == "default" or k in DATASETS or model(k) or (d in DATASETS and model(m))


def _per_run(v) -> bool:
    return all(_run_key(k) and is_kind(n, "float") and math.isfinite(n) and n > 0 for k, n in v.items())


def _per_dataset(test):
    return lambda v: v is None or all(d in DATASETS and test(x) for d, x in v.items())


def _model_lists(v) -> bool:
    return all(d in DATASETS and isinstance(ms, list) and all(isinstance(m, str) and m for m in ms)
               for d, ms in v.items())


def _canvas(c) -> bool:
    sides = list(c) if isinstance(c, (list, tuple)) else [c]
    whole = all(is_kind(n, "int") and n >= 16 for n in sides)
    return whole and len(sides) == (2 if isinstance(c, (list, tuple)) else 1)


def _fold(v) -> bool:
    return v is None or (len(v) == 2 and all(is_kind(n, "int") for n in v) and 0 <= v[0] < v[1] and v[1] >= 2)


def _fractions(fr) -> bool:
    return (len(fr) == 3 and all(is_kind(x, "float") and 0 <= x <= 1 for x in fr) and fr[0] > 0 and fr[1] > 0
            and abs(sum(fr) - 1) < 1e-6)


def _beta(b) -> bool:
    return math.isfinite(b) and (0 < b < 1 or (b == int(b) and 1 <= b <= 45))


def _path(v) -> bool:
    return v is None or bool(v.strip())


# setting: (test of a value of the right type, what it takes)
RULES = {
    "profile": (lambda v: bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v)),
                "a plain name (letters, digits, . _ -)"),
    "seed": (lambda v: v >= 0, "a whole number at least 0"),
    "data_dir": (_path, "a path (or null)"), "init_weights": (_path, "a path (or null)"),
    "runs_dir": (_path, "a folder path"), "results_dir": (_path, "a folder path"),
    "cache_dir": (_path, "a folder path"),
    "canvas": (_canvas, "one side or [height, width] in whole pixels, at least 16 a side"),
    "scale_mode": (lambda v: v in ("global", "per_image"), "'global' or 'per_image'"),
    "scale_quantile": (_finite(0, 1, lo_open=True), "in (0, 1]"),
    "max_cells": (lambda v: v is None or all(k in SPLITS and is_kind(n, "int") and n >= 1
                                             for k, n in v.items()),
                  "a mapping of train, val and test to whole numbers at least 1, such as "
                  "{train: 16, val: 6, test: 6}"),
    "split_fractions": (_fractions, "three fractions [train, val, test] in [0, 1] that sum to 1, train and "
                                    "val above 0"),
    "bioimlab_test_cells": (lambda v: v >= 1, "at least 1"),
    "val_fold": (_fold, "[k, K]: fold k (0..K-1) of K >= 2 folds, or null"),
    "backbone": (lambda v: v in BACKBONES, " or ".join(BACKBONES)),
    "hidden": (lambda v: v >= 1, "at least 1"),
    "dropout": (_finite(0, 1, hi_open=True), "in [0, 1)"),
    "models": (_model_lists, f"a mapping of data sets ({', '.join(DATASETS)}) to lists of model names, "
                             "such as {pki3: [eresnet-u1c0]}"),
    "epochs": (_per_run, "a mapping of run keys (default, a data set, a model, data set/model) to numbers "
                         "above 0, such as {default: 8} (fractions allowed)"),
    "lr": (_per_run, "a mapping of run keys (default, a data set, a model, data set/model) to positive "
                     "rates, such as {default: 0.05, bioimlab: 0.02}"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "momentum": (_finite(0, 1, hi_open=True), "in [0, 1)"),
    "weight_decay": (_finite(0), "at least 0"), "alpha": (_finite(0), "at least 0"),
    "alpha_warmup_epochs": (_finite(0), "at least 0"),
    "center_lr": (_finite(0, 1), "in [0, 1]"),
    "patience": (lambda v: v is None or v >= 1, "at least 1 (or null: no early stop)"),
    "label_smoothing": (_finite(0, 1, hi_open=True), "in [0, 1)"),
    "init_from": (_per_dataset(lambda s: isinstance(s, str) and bool(s.strip())),
                  f"a mapping of data sets ({', '.join(DATASETS)}) to a data set or a run directory, such as "
                  "{bioimlab: pki3}"),
    "rotate_deg": (_finite(0, 180), "in [0, 180] degrees"),
    "optics": (_finite(0, 1), "a fraction in [0, 1]"),
    "threads": (lambda v: v is None or v >= 1, "at least 1 (or null)"),
    "gamma": (_finite(0, 10, lo_open=True), "in (0, 10] (the paper uses 1 to 1.5)"),
    "beta": (_beta, "a whole number of head chromosomes 1..45 (or a fraction in (0, 1))"),
    "distance": (lambda v: v in DISTANCES, "'cosine' or 'euclid'"),
    "extra_penalty": (_finite(0), "at least 0"), "missing_penalty": (_finite(0), "at least 0"),
    "review_k": (lambda v: 0 <= v <= 60, "a number of chromosomes, 0..60"),
    "set_aside": (_finite(0), "an expected number of wrong labels, at least 0"),
    "size_prior": (_per_dataset(lambda w: is_kind(w, "float") and math.isfinite(w) and w >= 0),
                   "a mapping of data sets to weights >= 0 (0: off), such as {pki3: 0.25}"),
}
KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
          "dict": "a mapping", "list": "a list"}


def is_kind(v, kind: str) -> bool:
    """Whether v is of a dataclass annotation's kind: an int is a number, a bool is not."""
    if kind == "None":
        return v is None
    if kind in ("int", "float", "bool") and isinstance(v, bool):
        return kind == "bool"
    return isinstance(v, {"int": int, "float": (int, float), "bool": bool, "str": str, "dict": dict,
                          "list": (list, tuple)}[kind])
