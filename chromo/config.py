"""Profiles (smoke, cpu, gpu) as one dataclass loaded from YAML, and every path the project uses."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from chromo.io import atomic_write_text, project_root

DATASETS = ("pki3", "bioimlab", "synthetic")


class ConfigError(ValueError):
    """A configuration or path problem, with a message a user can act on."""


@dataclass
class Config:
    profile: str = "smoke"
    seed: int = 0
    # data
    data_dir: str | None = None          # CHROMO_DATA overrides; default ../shared/data
    canvas: int | tuple = 64             # square canvas side, or [height, width] (tall), pixels
    scale_mode: str = "global"           # "global" (one scale per dataset) or "per_image"
    scale_quantile: float = 0.995        # global scale fits this quantile of max(width, height)
    max_cells: dict | None = None        # {"train": n, "val": n, "test": n}: a subset for quick runs
    split_fractions: tuple = (0.8, 0.1, 0.1)
    bioimlab_test_cells: int = 49        # Poletti et al. 2008: 70 train+val, 49 test
    val_fold: tuple | None = None        # [k, K]: cross-validation, fold k of K of the train+val cells is
                                         # the validation split (data.splits.fold); test untouched
    orient: bool = False                 # rotate each chromosome so its principal axis is vertical (data.orient)
    straighten: bool = False             # then resample a bent one along its centre line (data.straighten)
    flip: bool = True                    # the paper's horizontal flip
    vflip: bool = False                  # also vertical flips (which end is up stays ambiguous after orient)
    rotate_deg: float = 0.0              # optional small random rotation, degrees
    optics: float = 0.0                  # fraction of training images given microscope optics (augment.optics_batch)
    optics_blur_scaled: bool = False     # its blur range times max(H, W) / 64, like simulate_mi's (else canvas px)
    tta: bool = False                    # average logits and features over the flips at inference
    # model and training
    backbone: str = "resnet50"           # EResNet backbone: the paper's resnet50; resnet18 for cpu budgets
    stem_maxpool: bool = True            # False keeps resolution on small canvases
    hidden: int = 1024                   # width of each Extended Block unit
    dropout: float = 0.5
    adapt_baselines: bool = False        # AlexNet/VGG16 from scratch on a small canvas: BatchNorm, stride-2 stem
    models: dict = field(default_factory=lambda: {"pki3": ["eresnet-u1c0"], "bioimlab": ["eresnet-u1c0"]})
    epochs: dict = field(default_factory=lambda: {"default": 10})
    batch_size: int = 64
    lr: float = 0.05
    lr_by_dataset: dict | None = None    # dataset -> its runs' base learning rate (a dataset not named: lr)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    alpha: float = 0.5                   # weight of the center loss (eq. 3)
    alpha_warmup_epochs: float = 0.0     # ramp alpha linearly from 0 over these epochs (0: the paper's constant)
    center_lr: float = 0.5               # Wen et al.'s rate for the class centres
    patience: int | None = 5             # early stop: epochs without a better validation accuracy (None: off)
    label_smoothing: float = 0.0         # softmax loss with smoothed targets (0: the paper's plain softmax)
    init_from: dict | None = None        # {"bioimlab": "pki3"}: start from that dataset's run of the same model
                                         # (or from a run directory: {"bioimlab": "runs/cpu/pki3/eresnet-u1c0"})
    bf16: bool = True                    # bf16 autocast
    channels_last: bool = True
    threads: int | None = None
    init_weights: str | None = None      # a local state_dict to start from (nothing is downloaded)
    # matching
    gamma: float = 1.0                   # LFV scale (eq. 4)
    beta: int = 40                       # LRd head size for a 46-chromosome cell
    distance: str = "cosine"             # "cosine" (eq. 7) or "euclid" (eq. 6)
    extra_penalty: float = 4.0           # karyotype assignment: cost of a chromosome in an extra slot
    missing_penalty: float = 4.0         # ... and of an empty normal slot
    low_confidence: float = 0.5          # flag a chromosome whose top probability is below this
    size_prior: dict | None = None       # karyotype assignment: dataset -> weight of the relative-size prior
                                         # (karyotype.size_cost; a dataset not named: 0, off)
    # where things go, relative to the project root unless absolute
    runs_dir: str = "runs"
    results_dir: str = "book/results"
    cache_dir: str = ".cache"

    # Not fields (no annotation: outside to_dict() and every digest): the command line's --data-dir, which
    # ranks above CHROMO_DATA, and the config's own data_dir it replaced (for the note when they disagree).
    cli_data_dir = None
    file_data_dir = None

    # --- derived paths -------------------------------------------------------------------------
    def _abs(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else project_root() / q

    def data_root(self, must_exist: bool = True) -> Path:
        """The data folder, by precedence: the command line's --data-dir, CHROMO_DATA, the config's data_dir,
        ../shared/data beside the project. When two given sources disagree, a one-line note on stderr says
        which one is used."""
        given = []
        if self.cli_data_dir:
            given.append((Path(self.cli_data_dir).expanduser(), "--data-dir"))
        env = os.environ.get("CHROMO_DATA")
        if env:
            given.append((Path(env).expanduser(), "environment variable CHROMO_DATA"))
        file_dir = self.file_data_dir if self.cli_data_dir else self.data_dir
        if file_dir:
            given.append((self._abs(file_dir), "config value data_dir"))
        if given:
            p, how = given[0]
            ignored = [(q, h) for q, h in given[1:] if os.path.abspath(q) != os.path.abspath(p)]
            if ignored:
                _note(f"using data directory {p} (from {how}); not {', '.join(f'{q} (from {h})' for q, h in ignored)}")
        else:
            p, how = (project_root().parent / "shared" / "data").resolve(), "default ../shared/data"
        if must_exist and not p.is_dir():
            raise ConfigError(
                f"data directory not found: {p} (from {how}). Set CHROMO_DATA=/path/to/data or "
                "data_dir in the config to the folder holding pki3/ and bioimlab/, or use --dataset synthetic."
            )
        return p

    def run_dir(self, dataset: str, model: str) -> Path:
        return self._abs(self.runs_dir) / self.profile / dataset / model

    def results(self) -> Path:
        return self._abs(self.results_dir) / self.profile

    def cache(self) -> Path:
        return self._abs(self.cache_dir)

    def header_cache(self, dataset: str) -> Path:
        """Where a data set's image headers are remembered between manifest builds (manifest.HeaderCache)."""
        return self.cache() / dataset / "headers.json"

    def epochs_for(self, model: str, dataset: str | None = None) -> int | float:
        """Epochs for a run: keys '<dataset>/<model>', '<model>', '<dataset>', then 'default'. A fraction
        (0.5) stops the last epoch part way; a whole number is returned as an int."""
        for key in (f"{dataset}/{model}", model, dataset, "default"):
            if key in self.epochs:
                n = self.epochs[key]
                return int(n) if float(n).is_integer() else float(n)
        return 10

    def lr_for(self, dataset: str) -> float:
        """Base SGD learning rate of a data set's runs: lr_by_dataset's value for it, else lr."""
        return float(self._lr_as_written(dataset))

    def _lr_as_written(self, dataset: str):
        # as the profile writes it: the run digest keeps 1 and 1.0 apart, as it always has
        return (self.lr_by_dataset or {}).get(dataset, self.lr)

    def size_prior_for(self, dataset: str) -> float:
        """Weight of the karyotype assignment's relative-size prior for a data set (0: off)."""
        return float((self.size_prior or {}).get(dataset, 0.0))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return _sha(self.to_dict())

    def run_digest(self, dataset: str, model: str) -> str:
        """What identifies one training run: the settings that change it (not the other runs' epochs,
        not matching or output settings), so editing one run's budget does not invalidate the others."""
        d = {k: v for k, v in self.to_dict().items()
             if k not in NOT_TRAINING and k != "lr_by_dataset" and not (k in ADDED_LATER and v == ADDED_LATER[k])
             and model in MODEL_ONLY.get(k, (model,))}
        # the run's own budget and learning rate: another data set's do not change it
        d.update(epochs=self.epochs_for(model, dataset), lr=self._lr_as_written(dataset),
                 dataset=dataset, model=model)
        d["init_from"] = self.source_digest(dataset, model)      # a retrained source invalidates this run
        return _sha(d)

    def source_run(self, dataset: str, model: str) -> tuple[str | None, Path | None]:
        """init_from for one run: (source dataset, None) for a dataset name (its run of this profile),
        (None, path) for a run directory, (None, None) when the run starts from scratch."""
        src = (self.init_from or {}).get(dataset)
        if not src:
            return None, None
        return (src, None) if src in DATASETS else (None, self._abs(src))

    def source_digest(self, dataset: str, model: str) -> str | None:
        src, path = self.source_run(dataset, model)
        if src:
            return self.run_digest(src, model)
        if path:
            done = path / "done.json"     # chromo.run.Run.DONE (config sits below run, so spelled here)
            return json.loads(done.read_text()).get("config_digest") if done.exists() else str(path)
        return None


# settings that do not change a trained model
NOT_TRAINING = {"models", "epochs", "gamma", "beta", "distance", "extra_penalty", "missing_penalty", "low_confidence",
                "size_prior",
                "runs_dir", "results_dir", "cache_dir", "data_dir", "threads", "profile"}


# training settings added after runs were trained, with the value that means "off": left out of run_digest
# at that value, so the runs trained before the setting existed (which behave exactly so) stay valid
ADDED_LATER = {"optics": 0.0, "adapt_baselines": False, "straighten": False, "optics_blur_scaled": False,
               "val_fold": None}

# settings that change only some models: left out of the other models' run_digest
MODEL_ONLY = {"adapt_baselines": ("alexnet", "vgg16")}


def _sha(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load(path: str | os.PathLike | None = None, *, cli_data_dir: str | os.PathLike | None = None,
         **overrides) -> Config:
    """Read a profile YAML (path or profile name such as 'cpu'), apply keyword overrides (None means: keep
    the file's value), check every setting (check_values). A YAML may name `base: <profile or path>` to
    start from another profile's settings. cli_data_dir is the command line's --data-dir: relative to the
    working directory, it becomes data_dir and ranks above CHROMO_DATA (Config.data_root)."""
    values: dict = {}
    where = "settings"
    if path is not None:
        p = Path(path)
        if not p.suffix:  # a bare profile name
            p = project_root() / "configs" / f"{path}.yaml"
        elif not p.is_absolute() and not p.exists():
            p = project_root() / p
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        if not p.is_file():
            raise ConfigError(f"{p}: is a folder, not a config file")
        try:
            values = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: cannot read the config file ({e})") from e
        if not isinstance(values, dict):
            raise ConfigError(f"{p}: expected a mapping of settings, got {type(values).__name__}")
        where = str(p)
        if "base" in values:  # 'base: smoke' (or a path): start from that profile, then these settings
            base = values.pop("base")
            if not isinstance(base, str):
                raise ConfigError(f"{p}: base must be a profile name or a config path, not {base!r}")
            values = {**load(base).to_dict(), **values}
    given = {k: v for k, v in overrides.items() if v is not None}
    if set(given) <= {f.name for f in dataclasses.fields(Config)}:
        check_values(given)          # a bad keyword is named as such, not blamed on the file
    values.update(given)
    cfg = from_values(values, where)
    if cli_data_dir:
        cfg.file_data_dir = cfg.data_dir
        cfg.data_dir = cfg.cli_data_dir = str(Path(cli_data_dir).expanduser().resolve())
    return cfg


def from_values(values: dict, where: str = "settings") -> Config:
    """A Config from a mapping of settings (None kept as None), after check_values; errors name `where`."""
    values = dict(values)
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown} in {where}; known keys: {sorted(known)}")
    try:
        check_values(values)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    if "split_fractions" in values:
        values["split_fractions"] = tuple(values["split_fractions"])
    return _check_together(Config(**values), where)


def _check_together(cfg: Config, where: str = "settings") -> Config:
    """Settings that only make sense together (checked on the whole config, after the overrides)."""
    named = sorted(d for d, src in (cfg.init_from or {}).items() if src in DATASETS)
    if cfg.val_fold and named:
        raise ConfigError(f"{where}: val_fold with init_from naming a data set ({', '.join(named)}) would retrain "
                          "that source on the fold too; give init_from a run directory instead")
    if cfg.straighten and not cfg.orient:
        raise ConfigError(f"{where}: straighten: true needs orient: true (the centre line is found on an "
                          "upright chromosome)")
    return cfg


def validate(cfg: Config) -> Config:
    """check_values on a Config built in code (dataclasses.replace, attribute edits); returns it."""
    check_values(cfg.to_dict())
    return _check_together(cfg)


# --- checking settings -----------------------------------------------------------------------------
_EXAMPLES = {"epochs": "{default: 8}", "max_cells": "{train: 16, val: 6, test: 6}", "init_from": "{bioimlab: pki3}",
             "size_prior": "{pki3: 0.25}",
             "models": "{pki3: [eresnet-u1c0]}", "split_fractions": "[0.8, 0.1, 0.1]",
             "canvas": "[96, 48]", "val_fold": "[0, 5]", "lr_by_dataset": "{bioimlab: 0.02}"}
_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
          "dict": "a mapping", "tuple": "a list"}
BACKBONES = ("resnet18", "resnet34", "resnet50")
SPLITS = ("train", "val", "test")


def _is(v, kind: str) -> bool:
    if kind == "None":
        return v is None
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "str":
        return isinstance(v, str)
    if kind == "dict":
        return isinstance(v, dict)
    if kind == "tuple":
        return isinstance(v, (list, tuple))
    raise AssertionError(kind)


def _kind_text(name: str, kinds: list) -> str:
    text = " or ".join(_KINDS[k] + (f" such as {_EXAMPLES[name]}" if name in _EXAMPLES and k in ("dict", "tuple")
                                    else "") for k in kinds if k != "None")
    return text + (" (or null)" if "None" in kinds else "")


def _range(name: str, v, ok: bool, what: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {what}, not {v!r}")


def check_values(values: dict) -> None:
    """Refuse a setting of the wrong type or outside its range, with a message naming it and what it takes:
    types from the Config dataclass (an int is a number, a bool is not), then ranges, then the contents of
    mappings (epochs, max_cells, models, init_from, lr_by_dataset, size_prior). Values are checked, never converted, so what is stored
    (and digested) is what was written."""
    types = {f.name: f.type for f in dataclasses.fields(Config)}
    for name, v in values.items():
        if name not in types:
            continue
        kinds = [k.strip() for k in str(types[name]).split("|")]
        if name == "beta":
            kinds = ["float"]      # an integer count of a 46-chromosome cell, or a fraction in (0, 1)
        if not any(_is(v, k) for k in kinds):
            raise ConfigError(f"{name} must be {_kind_text(name, kinds)}, not {v!r}")
    g = {**Config().to_dict(), **values}.get

    def finite(x):
        return math.isfinite(x)

    _range("profile", g("profile"), bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", g("profile"))),
           "a plain name (letters, digits, . _ -)")
    for name in ("runs_dir", "results_dir", "cache_dir"):
        _range(name, g(name), bool(g(name).strip()), "a folder path")
    for name in ("data_dir", "init_weights"):
        _range(name, g(name), g(name) is None or bool(g(name).strip()), "a path (or null)")
    _range("seed", g("seed"), g("seed") >= 0, "a whole number at least 0")
    c = g("canvas")
    if isinstance(c, (list, tuple)) and (len(c) != 2 or not all(_is(n, "int") for n in c)):
        raise ConfigError(f"canvas must be one side or [height, width] in whole pixels, not {c!r}")
    if min(c if isinstance(c, (list, tuple)) else [c]) < 16:
        raise ConfigError(f"canvas {c} px is too small (at least 16 a side)")
    if g("scale_mode") not in ("global", "per_image"):
        raise ConfigError(f"scale_mode must be 'global' or 'per_image', not {g('scale_mode')!r}")
    _range("scale_quantile", g("scale_quantile"), 0 < g("scale_quantile") <= 1, "in (0, 1]")
    _range("bioimlab_test_cells", g("bioimlab_test_cells"), g("bioimlab_test_cells") >= 1, "at least 1")
    vf = g("val_fold")
    if vf is not None and (len(vf) != 2 or not all(_is(n, "int") for n in vf) or not 0 <= vf[0] < vf[1]
                           or vf[1] < 2):
        raise ConfigError(f"val_fold must be [k, K]: fold k (0..K-1) of K >= 2 folds, or null, not {vf!r}")
    _range("rotate_deg", g("rotate_deg"), 0 <= g("rotate_deg") <= 180, "in [0, 180] degrees")
    _range("optics", g("optics"), 0 <= g("optics") <= 1, "a fraction in [0, 1]")
    _range("backbone", g("backbone"), g("backbone") in BACKBONES, " or ".join(BACKBONES))
    _range("hidden", g("hidden"), g("hidden") >= 1, "at least 1")
    _range("dropout", g("dropout"), 0 <= g("dropout") < 1, "in [0, 1)")
    _range("batch_size", g("batch_size"), g("batch_size") >= 1, "at least 1")
    _range("lr", g("lr"), 0 < g("lr") and finite(g("lr")), "a positive number")
    _range("momentum", g("momentum"), 0 <= g("momentum") < 1, "in [0, 1)")
    _range("weight_decay", g("weight_decay"), 0 <= g("weight_decay") and finite(g("weight_decay")), "at least 0")
    _range("alpha", g("alpha"), 0 <= g("alpha") and finite(g("alpha")), "at least 0")
    _range("alpha_warmup_epochs", g("alpha_warmup_epochs"),
           0 <= g("alpha_warmup_epochs") and finite(g("alpha_warmup_epochs")), "at least 0")
    _range("center_lr", g("center_lr"), 0 <= g("center_lr") <= 1, "in [0, 1]")
    if g("patience") is not None and g("patience") < 1:
        raise ConfigError(f"patience must be at least 1 (or null: no early stop), not {g('patience')!r}")
    if not 0 <= g("label_smoothing") < 1:
        raise ConfigError(f"label_smoothing must be in [0, 1), not {g('label_smoothing')!r}")
    _range("threads", g("threads"), g("threads") is None or g("threads") >= 1, "at least 1 (or null)")
    _range("gamma", g("gamma"), 0 < g("gamma") <= 10, "in (0, 10] (the paper uses 1 to 1.5)")
    b = g("beta")
    _range("beta", b, 0 < b < 1 or (b == int(b) and 1 <= b <= 45) if finite(b) else False,
           "a whole number of head chromosomes 1..45 (or a fraction in (0, 1))")
    if g("distance") not in ("cosine", "euclid"):
        raise ConfigError(f"distance must be 'cosine' or 'euclid', not {g('distance')!r}")
    for name in ("extra_penalty", "missing_penalty"):
        _range(name, g(name), 0 <= g(name) and finite(g(name)), "at least 0")
    _range("low_confidence", g("low_confidence"), 0 <= g("low_confidence") <= 1, "in [0, 1]")

    fr = g("split_fractions")
    _range("split_fractions", list(fr), len(fr) == 3 and all(_is(x, "float") and 0 <= x <= 1 for x in fr)
           and fr[0] > 0 and fr[1] > 0 and abs(sum(fr) - 1) < 1e-6,
           "three fractions [train, val, test] in [0, 1] that sum to 1, train and val above 0")
    for key, n in g("epochs").items():
        if not _is(n, "float"):
            raise ConfigError(f"epochs for {key} must be a number (fractions allowed: 0.5 is half an epoch), "
                              f"not {n!r}")
        if not (n > 0 and finite(n)):
            raise ConfigError(f"epochs for {key} must be above 0, not {n!r}")
    for key, n in (g("max_cells") or {}).items():
        if key not in SPLITS:
            raise ConfigError(f"max_cells: unknown split {key!r}; use train, val and test")
        if not _is(n, "int") or n < 1:
            raise ConfigError(f"max_cells for {key} must be an integer at least 1, not {n!r}")
    for d, names in g("models").items():
        if d not in DATASETS:
            raise ConfigError(f"models: unknown dataset {d!r}; choose from {', '.join(DATASETS)}")
        if not isinstance(names, (list, tuple)) or not all(isinstance(m, str) and m for m in names):
            raise ConfigError(f"models for {d} must be a list of model names such as [eresnet-u1c0], not {names!r}")
    for d, r in (g("lr_by_dataset") or {}).items():
        if d not in DATASETS:
            raise ConfigError(f"lr_by_dataset: unknown dataset {d!r}; choose from {', '.join(DATASETS)}")
        if not _is(r, "float") or not (finite(r) and r > 0):
            raise ConfigError(f"lr_by_dataset for {d} must be a positive number, not {r!r}")
    for d, w in (g("size_prior") or {}).items():
        if d not in DATASETS:
            raise ConfigError(f"size_prior: unknown dataset {d!r}; choose from {', '.join(DATASETS)}")
        if not _is(w, "float") or not (finite(w) and w >= 0):
            raise ConfigError(f"size_prior for {d} must be a weight >= 0 (0: off), not {w!r}")
    init = g("init_from") or {}
    for d, src in init.items():
        if d not in DATASETS:
            raise ConfigError(f"init_from: unknown dataset {d!r}; choose from {', '.join(DATASETS)}")
        if not isinstance(src, str) or not src.strip():
            raise ConfigError(f"init_from for {d} must be a dataset name or a run directory, not {src!r}")
        if d == src:
            raise ConfigError(f"init_from: {d} cannot start from itself")
    for d in init:  # a chain of dataset names must end: pki3 -> bioimlab -> pki3 would never finish
        chain, cur = [d], init.get(d)
        while cur in DATASETS and cur in init:
            chain.append(cur)
            if cur in chain[:-1]:
                raise ConfigError(f"init_from has a cycle: {' -> '.join(chain)}")
            cur = init[cur]


_NOTED: set = set()


def _note(text: str) -> None:
    """A one-line note on stderr, once per process."""
    if text not in _NOTED:
        _NOTED.add(text)
        print(f"chromo: note: {text}", file=sys.stderr, flush=True)


def save(cfg: Config, path: Path) -> None:
    save_values(cfg.to_dict(), path)


def save_values(values: dict, path: Path) -> None:
    """A run's config.yaml (or a profile's settings) written atomically, keys sorted."""
    atomic_write_text(path, yaml.safe_dump(values, sort_keys=True))
