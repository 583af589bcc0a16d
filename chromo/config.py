"""Profiles (smoke, cpu, gpu) as one dataclass loaded from YAML, and every path the project uses.

A profile has three groups of settings, each a section of its YAML file: ``data`` (how images become
canvases and splits), ``training`` (the model, its training and its inference) and ``matching`` (LFV,
LRd and the karyotype assignment). A run's identity (``Config.run_digest``) is the hash of its resolved
``data`` and ``training`` settings under ``SCHEMA``; ``matching`` never changes a trained model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from chromo import DATASETS, PAPER_MODEL
from chromo.io import atomic_write_text, project_root
from chromo.rules import DISTANCES, KINDS, RULES, SPLITS, is_kind  # noqa: F401 (the vocabulary)


# The version of the run identity: a change of what identifies a run bumps it, and the runs trained
# before are migrated or retrained, never matched by exception.
SCHEMA = 2
ADAPTED = ("alexnet", "vgg16")      # the baselines that training.adapt_baselines changes


class ConfigError(ValueError):
    """A configuration or path problem, with a message a user can act on."""


def canvas_hw(canvas) -> tuple[int, int]:
    """(height, width) of a canvas given as one side (a square) or as [height, width] (a tall canvas: with
    the chromosome upright, more pixels along its bands for about the same cost)."""
    if isinstance(canvas, (list, tuple)):
        h, w = canvas
        return int(h), int(w)
    return int(canvas), int(canvas)


@dataclass
class Data:
    canvas: int | list = 64              # square side, or [height, width] (tall), pixels
    scale_mode: str = "global"           # "global" (one scale per dataset) or "per_image"
    scale_quantile: float = 0.995        # the global scale fits this quantile of max(height, width)
    max_cells: dict | None = None        # {"train": n, "val": n, "test": n}: a subset for quick runs
    split_fractions: list = field(default_factory=lambda: [0.8, 0.1, 0.1])
    bioimlab_test_cells: int = 49        # Poletti et al. 2008: 70 train+val, 49 test
    val_fold: list | None = None         # [k, K]: fold k of K of the train+val cells validates (data.splits)
    orient: bool = False                 # turn each chromosome upright (data.orient)
    straighten: bool = False             # then resample a bent one along its centre line (data.straighten)


@dataclass
class Training:
    backbone: str = "resnet50"           # EResNet backbone
    stem_maxpool: bool = True            # False keeps resolution on small canvases
    hidden: int = 1024                   # width of each Extended Block unit
    dropout: float = 0.5
    # AlexNet/VGG16 from scratch on a small canvas: BatchNorm, stride-2 stem
    adapt_baselines: bool = False
    models: dict = field(default_factory=lambda: {"pki3": [PAPER_MODEL], "bioimlab": [PAPER_MODEL]})
    epochs: dict = field(default_factory=lambda: {"default": 10})      # run key -> epochs (Config.epochs_for)
    # run key -> base SGD rate (Config.lr_for)
    lr: dict = field(default_factory=lambda: {"default": 0.05})
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 5e-4
    alpha: float = 0.5                   # weight of the center loss (eq. 3)
    alpha_warmup_epochs: float = 0.0     # alpha ramps from 0 over these epochs (0: the paper's constant)
    center_lr: float = 0.5               # Wen et al.'s rate for the class centres
    patience: int | None = 5             # early stop after this many epochs without a better val accuracy
    label_smoothing: float = 0.0         # 0: the paper's plain softmax
    init_from: dict | None = None        # dataset -> a dataset (its run of the same model) or a run directory
    flip: bool = True                    # the paper's horizontal flip
    vflip: bool = False                  # vertical flips too
    rotate_deg: float = 0.0              # small random rotations, degrees
    optics: float = 0.0                  # fraction of training images given microscope optics
    optics_blur_scaled: bool = False     # its blur range times max(H, W) / 64, as simulate_mi's
    tta: bool = False                    # inference: mean over the image and its three flips
    bf16: bool = True                    # bf16 autocast
    channels_last: bool = True
    threads: int | None = None           # torch threads (speed only: not part of a run's identity)
    init_weights: str | None = None      # a local state_dict to start from (nothing is downloaded)


@dataclass
class Matching:
    gamma: float = 1.0                   # LFV scale (eq. 4)
    beta: float = 40                     # LRd head size of a 46-chromosome cell (or a fraction in (0, 1))
    distance: str = "cosine"             # "cosine" (eq. 7) or "euclid" (eq. 6)
    extra_penalty: float = 4.0           # karyotype assignment: a chromosome in an extra slot
    missing_penalty: float = 4.0         # ... an empty normal slot
    # `chromo classify`: the chromosomes of each cell marked to check first
    review_k: int = 2
    set_aside: float = 2.0               # ... and a cell set aside from this many expected wrong labels
    size_prior: dict | None = None       # dataset -> weight of the assignment's relative-size prior (0: off)


GROUPS = {"data": Data, "training": Training, "matching": Matching}


@dataclass
class Config:
    profile: str = "smoke"
    seed: int = 0
    data_dir: str | None = None          # --data-dir and CHROMO_DATA rank above; default ../shared/data
    runs_dir: str = "runs"               # these three relative to the project root unless absolute
    results_dir: str = "book/results"
    cache_dir: str = ".cache"
    data: Data = field(default_factory=Data)
    training: Training = field(default_factory=Training)
    matching: Matching = field(default_factory=Matching)

    # Not fields (outside to_dict() and every digest): the command line's --data-dir, which ranks above
    # CHROMO_DATA, and the config's own data_dir it replaced (for the note when they disagree).
    cli_data_dir = None
    file_data_dir = None

    # --- derived paths -------------------------------------------------------------------------
    def _abs(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else project_root() / q

    def data_root(self, must_exist: bool = True) -> Path:
        """The data folder, by precedence: the command line's --data-dir, CHROMO_DATA, the config's data_dir,
        ../shared/data beside the project. When two given sources disagree, a note on stderr says which."""
        given = []
        if self.cli_data_dir:
            given.append((Path(self.cli_data_dir).expanduser(), "--data-dir"))
        if os.environ.get("CHROMO_DATA"):
            given.append((Path(os.environ["CHROMO_DATA"]).expanduser(), "environment variable CHROMO_DATA"))
        file_dir = self.file_data_dir if self.cli_data_dir else self.data_dir
        if file_dir:
            given.append((self._abs(file_dir), "config value data_dir"))
        if given:
            p, how = given[0]
            ignored = [(q, h) for q, h in given[1:] if os.path.abspath(q) != os.path.abspath(p)]
            if ignored:
                _note(f"using data directory {p} (from {how}); not "
                      + ", ".join(f"{q} (from {h})" for q, h in ignored))
        else:
            p, how = (project_root().parent / "shared" / "data").resolve(), "default ../shared/data"
        if must_exist and not p.is_dir():
            raise ConfigError(
                f"data directory not found: {p} (from {how}). Set CHROMO_DATA=/path/to/data or data_dir in "
                "the config to the folder holding pki3/ and bioimlab/, or use --dataset synthetic.")
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

    # --- per-run settings ------------------------------------------------------------------------
    def epochs_for(self, model: str, dataset: str | None = None) -> int | float:
        """Epochs of a run (run_value): a fraction (0.5) stops the last epoch part way."""
        n = run_value(self.training.epochs, model, dataset, 10)
        return int(n) if float(n).is_integer() else float(n)

    def lr_for(self, model: str, dataset: str | None = None) -> float:
        """Base SGD learning rate of a run (run_value)."""
        return float(run_value(self.training.lr, model, dataset, 0.05))

    def size_prior_for(self, dataset: str) -> float:
        """Weight of the karyotype assignment's relative-size prior for a data set (0: off)."""
        return float((self.matching.size_prior or {}).get(dataset, 0.0))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return _sha(self.to_dict())

    def run_digest(self, dataset: str, model: str) -> str:
        """A run's identity: the hash, under SCHEMA, of the settings it is trained with, resolved for it:
        every data setting, every training setting with its own epochs and rate, AlexNet/VGG16's adaptation
        only for them, and its init_from source's identity in place of the source's name."""
        t = dataclasses.asdict(self.training)
        for per_run in ("models", "epochs", "lr", "init_from", "adapt_baselines", "threads"):
            del t[per_run]
        return _sha({"schema": SCHEMA, "dataset": dataset, "model": model, "seed": self.seed,
                     "data": dataclasses.asdict(self.data), "training": t,
                     "epochs": self.epochs_for(model, dataset), "lr": self.lr_for(model, dataset),
                     "adapt": self.training.adapt_baselines and model in ADAPTED,
                     "init_from": self.source_digest(dataset, model)})

    def source_run(self, dataset: str) -> tuple[str | None, Path | None]:
        """init_from of a data set's runs: (source dataset, None) for a dataset name (its run of this
        profile), (None, path) for a run directory, (None, None) when the run starts from scratch."""
        src = (self.training.init_from or {}).get(dataset)
        if not src:
            return None, None
        return (src, None) if src in DATASETS else (None, self._abs(src))

    def source_digest(self, dataset: str, model: str) -> str | None:
        src, path = self.source_run(dataset)
        if src:
            return self.run_digest(src, model)
        if path:
            done = path / "done.json"     # chromo.run.Run.DONE (config sits below run, so spelled here)
            return json.loads(done.read_text()).get("config_digest") if done.exists() else str(path)
        return None


def run_value(table: dict, model: str, dataset: str | None, default):
    """A per-run setting (epochs, lr) from its mapping: keys '<dataset>/<model>', '<model>', '<dataset>',
    then 'default'; the first present wins."""
    for key in (f"{dataset}/{model}", model, dataset, "default"):
        if key in table:
            return table[key]
    return default


def _sha(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


# --- reading --------------------------------------------------------------------------------------------
def read_values(path) -> tuple[dict, Path]:
    """The settings of a YAML file (a path or a profile name such as 'cpu'), with its `base:` (a profile
    name, or a path relative to the file's folder) merged in below them, group by group."""
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
    base = values.pop("base", None)
    if base is None:
        return values, p
    if not isinstance(base, str):
        raise ConfigError(f"{p}: base must be a profile name or a config path, not {base!r}")
    near = p.parent / base
    below, _ = read_values(near if Path(base).suffix and near.exists() else base)
    return merge(below, values), p


def merge(below: dict, above: dict) -> dict:
    """`above` over `below`, the groups (data, training, matching) merged key by key."""
    out = {**below, **above}
    for g in GROUPS:
        if isinstance(below.get(g), dict) and isinstance(above.get(g), dict):
            out[g] = {**below[g], **above[g]}
    return out


def load(path: str | os.PathLike | None = None, *, cli_data_dir: str | os.PathLike | None = None,
         **overrides) -> Config:
    """A profile YAML (path or profile name such as 'cpu'; None: the built-in defaults), with keyword
    overrides by setting name (`canvas=96`, `lr={"default": 0.01}`; None keeps the file's value), every
    setting checked. cli_data_dir is the command line's --data-dir: it becomes data_dir and ranks above
    CHROMO_DATA (Config.data_root)."""
    values, where = ({}, "settings") if path is None else read_values(path)
    given = nest({k: v for k, v in overrides.items() if v is not None}, "keyword arguments")
    check_values(given, "keyword arguments")      # a bad keyword is named as such, not blamed on the file
    cfg = from_values(merge(values, given), str(where))
    if cli_data_dir:
        cfg.file_data_dir = cfg.data_dir
        cfg.data_dir = cfg.cli_data_dir = str(Path(cli_data_dir).expanduser().resolve())
    return cfg


def nest(flat: dict, where: str) -> dict:
    """{setting name: value} placed in its group: {"canvas": 96} -> {"data": {"canvas": 96}}."""
    out: dict = {}
    for k, v in flat.items():
        g = next((g for g, cls in GROUPS.items() if k in _names(cls)), None)
        if g is not None:
            out.setdefault(g, {})[k] = v
        elif k in _names(Config):
            out[k] = v
        else:
            raise ConfigError(f"unknown setting {k!r} in {where}")
    return out


def from_values(values: dict, where: str = "settings") -> Config:
    """A Config from a (nested) mapping of settings, after check_values; errors name `where`."""
    check_values(values, where)
    top = {k: v for k, v in values.items() if k not in GROUPS}
    groups = {g: cls(**(values.get(g) or {})) for g, cls in GROUPS.items()}
    return _check_together(Config(**top, **groups), where)


def _names(cls) -> set:
    return {f.name for f in dataclasses.fields(cls)} - set(GROUPS)


def _check_together(cfg: Config, where: str = "settings") -> Config:
    """Settings that only make sense together (checked on the whole config, after the overrides)."""
    named = sorted(d for d, src in (cfg.training.init_from or {}).items() if src in DATASETS)
    if cfg.data.val_fold and named:
        raise ConfigError(f"{where}: val_fold with init_from naming a data set ({', '.join(named)}) would "
                          "retrain that source on the fold too; give init_from a run directory instead")
    if cfg.data.straighten and not cfg.data.orient:
        raise ConfigError(f"{where}: straighten: true needs orient: true (the centre line is found on an "
                          "upright chromosome)")
    return cfg


def validate(cfg: Config) -> Config:
    """check_values on a Config built or edited in code; returns it."""
    check_values(cfg.to_dict(), "settings")
    return _check_together(cfg)


def save(cfg: Config, path: Path) -> None:
    save_values(cfg.to_dict(), path)


def save_values(values: dict, path: Path) -> None:
    """A run's config.yaml (or a profile's settings) written atomically, keys sorted."""
    atomic_write_text(path, yaml.safe_dump(values, sort_keys=True))


_NOTED: set = set()


def _note(text: str) -> None:
    """A one-line note on stderr, once per process."""
    if text not in _NOTED:
        _NOTED.add(text)
        print(f"chromo: note: {text}", file=sys.stderr, flush=True)


def check_values(values: dict, where: str = "settings") -> None:
    """Refuse an unknown setting, one of the wrong type (from the dataclasses' annotations; an int is a
    number, a bool is not) or outside its range (RULES), naming it and what it takes. Values are checked,
    never converted, so what is stored (and digested) is what was written."""
    for name, v in values.items():
        if name in GROUPS:
            if not isinstance(v, dict):
                raise ConfigError(f"{where}: {name} must be a mapping of settings, not {v!r}")
            _check(GROUPS[name], v, f"{where}, {name}")
    _check(Config, {k: v for k, v in values.items() if k not in GROUPS}, where)
    init = (values.get("training") or {}).get("init_from") or {}
    for d in init:  # a chain of dataset names must end: pki3 -> bioimlab -> pki3 would never finish
        chain = [d]
        while chain[-1] in init and init[chain[-1]] in DATASETS:
            chain.append(init[chain[-1]])
            if chain[-1] in chain[:-1]:
                raise ConfigError(f"{where}: init_from has a cycle: {' -> '.join(chain)}")


def _check(cls, values: dict, where: str) -> None:
    types = {f.name: f.type for f in dataclasses.fields(cls) if f.name not in GROUPS}
    for name, v in values.items():
        if name not in types:
            home = next((g for g, c in GROUPS.items() if name in _names(c)), None)
            hint = f"; it belongs under `{home}:`" if home else f"; known: {', '.join(sorted(types))}"
            raise ConfigError(f"{where}: unknown setting {name!r}{hint}")
        kinds = [k.strip() for k in str(types[name]).split("|")]
        if not any(is_kind(v, k) for k in kinds):
            text = " or ".join(KINDS[k] for k in kinds if k != "None") + (" (or null)" if "None" in kinds
                                                                           else "")
            raise ConfigError(f"{where}: {name} must be {text}, not {v!r}")
        test, what = RULES.get(name, (None, ""))
        if test is not None and not test(v):
            raise ConfigError(f"{where}: {name} must be {what}, not {v!r}")
    if cls is Training and values.get("init_from"):
        for d, src in values["init_from"].items():
            if d == src:
                raise ConfigError(f"{where}: init_from: {d} cannot start from itself")
