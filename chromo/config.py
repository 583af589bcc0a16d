"""Profiles (smoke, cpu, gpu) as one dataclass loaded from YAML, and every path the project uses."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DATASETS = ("pki3", "bioimlab", "synthetic")


class ConfigError(ValueError):
    """A configuration or path problem, with a message a user can act on."""


def project_root() -> Path:
    """The checkout that holds this package (editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "configs").is_dir():
        return here
    return Path.cwd()


@dataclass
class Config:
    profile: str = "smoke"
    seed: int = 0
    # data
    data_dir: str | None = None          # CHROMO_DATA overrides; default ../shared/data
    canvas: int = 64                     # square canvas side, pixels
    scale_mode: str = "global"           # "global" (one scale per dataset) or "per_image"
    scale_quantile: float = 0.995        # global scale fits this quantile of max(width, height)
    max_cells: dict | None = None        # {"train": n, "val": n, "test": n}: a subset for quick runs
    split_fractions: tuple = (0.8, 0.1, 0.1)
    bioimlab_test_cells: int = 49        # Poletti et al. 2008: 70 train+val, 49 test
    orient: bool = False                 # rotate each chromosome so its principal axis is vertical (data.orient)
    flip: bool = True                    # the paper's horizontal flip
    vflip: bool = False                  # also vertical flips (which end is up stays ambiguous after orient)
    rotate_deg: float = 0.0              # optional small random rotation, degrees
    tta: bool = False                    # average logits and features over the flips at inference
    # model and training
    backbone: str = "resnet50"           # EResNet backbone: the paper's resnet50; resnet18 for cpu budgets
    stem_maxpool: bool = True            # False keeps resolution on small canvases
    hidden: int = 1024                   # width of each Extended Block unit
    dropout: float = 0.5
    models: dict = field(default_factory=lambda: {"pki3": ["eresnet-u1c0"], "bioimlab": ["eresnet-u1c0"]})
    epochs: dict = field(default_factory=lambda: {"default": 10})
    batch_size: int = 64
    lr: float = 0.05
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
    # where things go, relative to the project root unless absolute
    runs_dir: str = "runs"
    results_dir: str = "book/results"
    cache_dir: str = ".cache"

    # --- derived paths -------------------------------------------------------------------------
    def _abs(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else project_root() / q

    def data_root(self, must_exist: bool = True) -> Path:
        """CHROMO_DATA, else the config's data_dir, else ../shared/data beside the project."""
        env = os.environ.get("CHROMO_DATA")
        if env:
            p, how = Path(env).expanduser(), "environment variable CHROMO_DATA"
        elif self.data_dir:
            p, how = self._abs(self.data_dir), "config value data_dir"
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

    def epochs_for(self, model: str, dataset: str | None = None) -> int:
        """Epochs for a run: keys '<dataset>/<model>', '<model>', '<dataset>', then 'default'."""
        for key in (f"{dataset}/{model}", model, dataset, "default"):
            if key in self.epochs:
                return int(self.epochs[key])
        return 10

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return _sha(self.to_dict())

    def run_digest(self, dataset: str, model: str) -> str:
        """What identifies one training run: the settings that change it (not the other runs' epochs,
        not matching or output settings), so editing one run's budget does not invalidate the others."""
        d = {k: v for k, v in self.to_dict().items() if k not in NOT_TRAINING}
        d.update(epochs=self.epochs_for(model, dataset), dataset=dataset, model=model)
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
            done = path / "done.json"
            return json.loads(done.read_text()).get("config_digest") if done.exists() else str(path)
        return None


# settings that do not change a trained model
NOT_TRAINING = {"models", "epochs", "gamma", "beta", "distance", "extra_penalty", "missing_penalty", "low_confidence",
                "runs_dir", "results_dir", "cache_dir", "data_dir", "threads", "profile"}


def _sha(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load(path: str | os.PathLike | None = None, **overrides) -> Config:
    """Read a profile YAML (path or profile name such as 'cpu'), apply keyword overrides. A YAML may name
    `base: <profile or path>` to start from another profile's settings."""
    values: dict = {}
    if path is not None:
        p = Path(path)
        if not p.suffix:  # a bare profile name
            p = project_root() / "configs" / f"{path}.yaml"
        elif not p.is_absolute() and not p.exists():
            p = project_root() / p
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        try:
            values = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from e
        if not isinstance(values, dict):
            raise ConfigError(f"{p}: expected a mapping of settings, got {type(values).__name__}")
        if "base" in values:  # 'base: smoke' (or a path): start from that profile, then these settings
            base = values.pop("base")
            values = {**load(base).to_dict(), **values}
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown} in {path}; known keys: {sorted(known)}")
    if "split_fractions" in values:
        values["split_fractions"] = tuple(values["split_fractions"])
    cfg = Config(**values)
    if cfg.scale_mode not in ("global", "per_image"):
        raise ConfigError(f"scale_mode must be 'global' or 'per_image', not {cfg.scale_mode!r}")
    if cfg.distance not in ("cosine", "euclid"):
        raise ConfigError(f"distance must be 'cosine' or 'euclid', not {cfg.distance!r}")
    for f in dataclasses.fields(Config):  # YAML 'off' is a bool, but 'off' in quotes is a string: refuse it
        v = getattr(cfg, f.name)
        if f.type == "bool" and not isinstance(v, bool):
            raise ConfigError(f"{f.name} must be true or false, not {v!r}")
    if cfg.patience is not None and int(cfg.patience) < 1:
        raise ConfigError(f"patience must be at least 1 (or null: no early stop), not {cfg.patience!r}")
    if not 0 <= cfg.label_smoothing < 1:
        raise ConfigError(f"label_smoothing must be in [0, 1), not {cfg.label_smoothing!r}")
    for d, src in (cfg.init_from or {}).items():
        if d == src:
            raise ConfigError(f"init_from: {d} cannot start from itself")
    if cfg.canvas < 16:
        raise ConfigError(f"canvas {cfg.canvas} px is too small (at least 16)")
    return cfg


def save(cfg: Config, path: Path) -> None:
    from chromo.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=True))
