"""A run: one trained model's directory ``runs/<profile>/<dataset>/<model>/`` and everything in it.

    config.yaml                      the resolved profile the run was trained with
    provenance.json                  git commit, versions, hardware, dataset, model, preprocessing
    log.csv                          one row per epoch
    last.pt, best.pt                 checkpoints (atomic writes; read with weights_only=True)
    done.json                        written once training finished, beside its best.pt
    features_<split>_<query>.npz     features, logits, labels, cells, paths of one split and query style
    .lock                            held (flock) while the run is trained

Training writes through a Run; evaluation, the notebooks and `chromo classify` read through it. Nothing
else spells these file names.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from chromo import N_CLASSES
from chromo import config as config_mod
from chromo.io import atomic_savez, atomic_torch_save, atomic_write_json, atomic_write_text, stale_temporaries

# torch and the models are imported where a checkpoint is read: the paths, settings and feature files of a
# run are read by light tools (the main job's planner, `chromo run-notebook`) that never load a model


class CheckpointError(RuntimeError):
    """A missing, corrupt or foreign checkpoint or run directory; the message names the path."""


def load_checkpoint(path: Path) -> dict:
    """torch.load(weights_only=True) with a clear error for a missing or corrupt file."""
    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: corrupt or incompatible checkpoint ({type(e).__name__}: {e})") from e


class Run:
    """The run directory `path`. Cheap to make: nothing is read until asked."""

    CONFIG, PROVENANCE, LOG = "config.yaml", "provenance.json", "log.csv"
    LAST, BEST, DONE, LOCK = "last.pt", "best.pt", "done.json", ".lock"
    SIZE_PRIOR = "size_prior.json"   # written with the features (chromo.inference), not by training
    OWN_FILES = (BEST, LAST, LOG, DONE, CONFIG, PROVENANCE)   # written by training, under the lock

    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def of(cls, cfg, dataset: str, model: str) -> "Run":
        """The run of `model` on `dataset` under profile `cfg` (config.Config.run_dir)."""
        return cls(cfg.run_dir(dataset, model))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def best(self) -> Path:
        return self.path / self.BEST

    @property
    def last(self) -> Path:
        return self.path / self.LAST

    # --- reading --------------------------------------------------------------------------------------
    def settings(self):
        """(config, dataset, model name) the run was trained with."""
        cfg_file, prov_file = self.path / self.CONFIG, self.path / self.PROVENANCE
        if not cfg_file.exists() or not prov_file.exists():
            raise CheckpointError(f"{self.path}: not a run directory (no {self.CONFIG}/{self.PROVENANCE}); "
                                  "train one with `chromo train`")
        try:
            values = yaml.safe_load(cfg_file.read_text())
            if not isinstance(values, dict):
                raise TypeError(f"{self.CONFIG} holds {type(values).__name__}, not a mapping")
            cfg = config_mod.from_values(values, str(cfg_file))     # null settings stay null
            prov = json.loads(prov_file.read_text())
            return cfg, prov["dataset"], prov["model"]
        except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError,
                config_mod.ConfigError) as e:
            raise CheckpointError(f"{self.path}: incompatible run directory ({type(e).__name__}: {e})") from e

    def provenance(self) -> dict:
        return json.loads((self.path / self.PROVENANCE).read_text())

    def log(self) -> pd.DataFrame:
        return pd.read_csv(self.path / self.LOG)

    def done(self) -> dict:
        return json.loads((self.path / self.DONE).read_text())

    def is_finished(self) -> bool:
        """Training ended here (done.json written); see is_done for "finished with these settings"."""
        return (self.path / self.DONE).exists()

    def is_done(self, cfg, dataset: str, model: str) -> bool:
        """A finished run of exactly these training settings (Config.run_digest) exists, with its best.pt."""
        if not (self.path / self.DONE).exists() or not self.best.exists():
            return False
        try:
            return self.done().get("config_digest") == cfg.run_digest(dataset, model)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            return False    # an unreadable done.json is not a finished run: train again

    def check_identity(self, ck: dict) -> None:
        """A checkpoint of this run must be the run's own: its config_digest is the digest of the run's
        config.yaml + provenance.json (Config.run_digest). A best.pt copied in from another run, or left by a
        retrain with other settings, is refused. A checkpoint without a digest cannot be checked and
        passes."""
        stored = ck.get("config_digest") if isinstance(ck, dict) else None
        if not stored:
            return
        cfg, dataset, model = self.settings()
        expected = cfg.run_digest(dataset, model)
        if stored != expected:
            raise CheckpointError(f"{self.best} belongs to another run (its config digest {stored}, the "
                                  f"run's {expected} for {dataset}/{model}); retrain or restore the run's "
                                  "own checkpoint")

    def load_model(self, device):
        """The best checkpoint as (net: the model in eval mode on `device`, payload), after check_identity."""
        from chromo.models import ModelConfig, build_model

        ck = load_checkpoint(self.best)
        self.check_identity(ck)
        try:
            net = build_model(ModelConfig(**ck["model_config"]))
            net.load_state_dict(ck["model"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{self.best}: does not fit the model it names ({e})") from e
        return net.to(device).eval(), ck

    def features_path(self, split: str, query: str) -> Path:
        """features_<split>_<query>.npz; split may name a subset such as 'train-every4'."""
        return self.path / f"features_{split}_{query}.npz"

    def has_features(self, split: str, query: str) -> bool:
        """A feature file of this split and query style exists (query "*": any style)."""
        return any(self.path.glob(self.features_path(split, query).name))

    def features(self, split: str, query: str) -> dict:
        """features [N, D], logits [N, 24], labels, cells, paths, index of one split and query style."""
        path = self.features_path(split, query)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no feature file; run `chromo features --run {self.path} "
                                    f"--split {split}`")
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    # --- writing (training, under the lock) -----------------------------------------------------------
    def start(self, cfg, provenance: dict) -> None:
        """A new run: its resolved config and provenance."""
        config_mod.save(cfg, self.path / self.CONFIG)
        atomic_write_json(self.path / self.PROVENANCE, provenance)

    def save_checkpoint(self, name: str, payload: dict) -> Path:
        return atomic_torch_save(self.path / name, payload)

    def save_log(self, rows: list[dict]) -> Path:
        return atomic_write_text(self.path / self.LOG, pd.DataFrame(rows).to_csv(index=False))

    def mark_done(self, record: dict) -> Path:
        return atomic_write_json(self.path / self.DONE, record)

    def save_features(self, split: str, query: str, **arrays) -> Path:
        return atomic_savez(self.features_path(split, query), **arrays)

    def save_size_prior(self, record: dict) -> Path:
        return atomic_write_json(self.path / self.SIZE_PRIOR, record)

    def size_prior(self) -> dict | None:
        """The karyotype assignment's relative-size prior of this run (size_prior.json, written with the
        features: weight, and the per-class model of chromo.karyotype.size_cost; with weight 0 the model may
        be absent), or None: a run whose features were extracted before the prior existed assigns on -log p
        alone."""
        path = self.path / self.SIZE_PRIOR
        if not path.exists():
            return None
        try:
            rec = json.loads(path.read_text())
            if not (np.isfinite(rec["weight"]) and rec["weight"] >= 0):
                raise ValueError(f"weight {rec['weight']!r}: a number >= 0 expected")
            if rec["weight"] or "mean" in rec:            # off (weight 0), a file may hold no model
                mean, sd = np.asarray(rec["mean"], float), np.asarray(rec["sd"], float)
                if mean.shape != (N_CLASSES,) or sd.shape != (N_CLASSES,) or not np.isfinite(mean).all() \
                        or not (np.isfinite(sd).all() and (sd > 0).all()):
                    raise ValueError("24 finite means and 24 finite standard deviations > 0 expected")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: unreadable size prior ({type(e).__name__}: {e}); rerun "
                                  f"`chromo features --run {self.path}`") from e
        return rec

    @contextlib.contextmanager
    def lock(self):
        """Hold `.lock` (fcntl.flock, exclusive, non-blocking) while the run is trained: a second `chromo
        train` on the same run directory stops with a CheckpointError instead of overwriting the first one's
        files. The kernel releases the lock when the process ends, even on kill -9, so no stale lock survives;
        the file itself stays (empty) and is never removed, which keeps the lock safe between processes."""
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / self.LOCK
        try:
            import fcntl
        except ImportError:          # no flock on this platform: no lock
            yield path
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 512, 0).decode(errors="replace").split()
                pid = holder[0] if holder else "unknown"
                where = f" on {holder[1]}" if len(holder) > 1 else ""
                since = f" since {holder[2]}" if len(holder) > 2 else ""
                raise CheckpointError(f"{self.path} is being trained by another process (pid "
                                      f"{pid}{where}{since}); wait for it to finish (then this command "
                                      "reuses its run) or stop that process") from None
            os.ftruncate(fd, 0)
            stamp = datetime.datetime.now().isoformat(timespec="seconds")
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {stamp}\n".encode(), 0)
            try:
                yield path
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files of atomic writes that an earlier, killed process left (up to a checkpoint's
        size each). Call only under lock(): the run's own files are this process's to write, so their
        temporaries go at once; others (feature files written by `chromo features`, which takes no lock)
        only when older than an hour."""
        stale = (set(stale_temporaries(self.path, targets=self.OWN_FILES))
                 | set(stale_temporaries(self.path, older_than_s=3600)))
        removed, size = 0, 0
        for p in sorted(stale):
            try:
                st = p.stat().st_size
                p.unlink()
                removed, size = removed + 1, size + st
            except FileNotFoundError:
                continue
        if removed:
            print(f"{self.path}: removed {removed} stale temporary file{'s' if removed > 1 else ''} "
                  f"({size / 1e6:.1f} MB) left by an interrupted write", file=sys.stderr, flush=True)
        return removed
