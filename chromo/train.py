"""Training loop (softmax + center loss), atomic checkpoints, resume, and feature extraction.

A run directory ``runs/<profile>/<dataset>/<model>/`` holds: config.yaml (resolved profile),
provenance.json (git commit, versions, hardware), log.csv (one row per epoch), last.pt and best.pt
(atomic writes; loaded with weights_only=True), done.json when finished, and the feature files
features_<split>_<query>.npz that every analysis notebook reads.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm import tqdm

from chromo import config as config_mod
from chromo.data.augment import flip_batch, rotate_batch
from chromo.data.loader import NATIVE_QUERY, batches, mi_queries, prepare, to_tensor
from chromo.io import (atomic_savez, atomic_torch_save, atomic_write_json, atomic_write_text, provenance,
                      stale_temporaries)
from chromo.losses import CenterLoss, joint_loss
from chromo.models import ModelConfig, build_model


class CheckpointError(RuntimeError):
    pass


class Interrupted(RuntimeError):
    """Raised by ``train(stop_after=...)`` to simulate a run killed after a checkpoint."""


def _autocast(cfg):
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.autocast(dev, dtype=torch.bfloat16, enabled=cfg.bf16)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_checkpoint(path: Path) -> dict:
    """torch.load(weights_only=True) with a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: corrupt or incompatible checkpoint ({type(e).__name__}: {e})") from e


@torch.no_grad()
def predict(model, images: np.ndarray, cfg, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(logits [N, 24], features [N, D]) as float32 numpy, in eval mode. With cfg.tta, both are the mean
    over the image and its horizontal, vertical and double flips (which end is up is not known)."""
    model.eval()
    dev = device()
    logits, feats = [], []
    for idx in batches(len(images), batch_size):
        x = to_tensor(images[idx]).to(dev)                           # [B, 1, H, W]
        views = [x, x.flip(-1), x.flip(-2), x.flip(-1, -2)] if getattr(cfg, "tta", False) else [x]
        lo, fe = 0, 0
        for v in views:
            if cfg.channels_last:
                v = v.contiguous(memory_format=torch.channels_last)
            with _autocast(cfg):
                a, b = model(v)
            lo, fe = lo + a.float() / len(views), fe + b.float() / len(views)
        logits.append(lo.cpu())
        feats.append(fe.cpu())
    if not logits:
        return np.zeros((0, 24), np.float32), np.zeros((0, getattr(model, "feature_dim", 0)), np.float32)
    return torch.cat(logits).numpy(), torch.cat(feats).numpy()


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def run_is_done(run: Path, cfg, dataset: str, model: str) -> bool:
    """A finished run of exactly these training settings (Config.run_digest) exists, with its best.pt."""
    done = Path(run) / "done.json"
    if not done.exists() or not (Path(run) / "best.pt").exists():
        return False
    try:
        return json.loads(done.read_text()).get("config_digest") == cfg.run_digest(dataset, model)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False    # an unreadable done.json is not a finished run: train again


LOCK_NAME = ".lock"
OWN_FILES = ("best.pt", "last.pt", "log.csv", "done.json", "config.yaml", "provenance.json")


@contextlib.contextmanager
def run_lock(run: Path):
    """Hold `run/.lock` (fcntl.flock, exclusive, non-blocking) while a run is trained: a second `chromo train`
    on the same run directory stops with a CheckpointError instead of overwriting the first one's files.
    The kernel releases the lock when the process ends, even on kill -9, so no stale lock survives; the
    file itself stays (empty) and is never removed, which keeps the lock safe between processes."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK_NAME
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
            raise CheckpointError(f"{run} is being trained by another process (pid {pid}{where}{since}); wait for "
                                  f"it to finish (then this command reuses its run) or stop that process") from None
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


def remove_stale_temporaries(run: Path) -> int:
    """Delete temporary files of atomic writes that an earlier, killed process left in a run directory
    (up to a checkpoint's size each). Call only under run_lock: the run's own files (checkpoints, log, ...)
    are this process's to write, so their temporaries go at once; others (feature files written by
    `chromo features`, which takes no lock) only when older than an hour."""
    stale = set(stale_temporaries(run, targets=OWN_FILES)) | set(stale_temporaries(run, older_than_s=3600))
    removed, size = 0, 0
    for p in sorted(stale):
        try:
            st = p.stat().st_size
            p.unlink()
            removed, size = removed + 1, size + st
        except FileNotFoundError:
            continue
    if removed:
        print(f"{run}: removed {removed} stale temporary file{'s' if removed > 1 else ''} ({size / 1e6:.1f} MB) "
              "left by an interrupted write", file=sys.stderr, flush=True)
    return removed


def train(cfg, dataset: str, model_name: str, progress: bool = True, stop_after: int | None = None) -> Path:
    """Train (or resume, or reuse a finished run of the same config) and return the run directory.

    The settings are checked first (config.validate). A source run (init_from) is trained first, under its
    own lock, and released before this run's lock is taken, so the two never wait on each other. Under the
    lock: a run finished meanwhile by another process is reused, temporary files of a killed write are
    removed, and done.json is written only beside a best.pt of this run."""
    config_mod.validate(cfg)
    run = cfg.run_dir(dataset, model_name)
    digest = cfg.run_digest(dataset, model_name)
    if run_is_done(run, cfg, dataset, model_name):
        return run
    epochs = cfg.epochs_for(model_name, dataset)
    if epochs < 1:
        raise config_mod.ConfigError(f"epochs for {dataset}/{model_name} must be at least 1, not {epochs}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    src, src_run = cfg.source_run(dataset, model_name)
    if src:
        src_run = train(cfg, src, model_name, progress)             # the source is trained first if missing
    if src_run and not (src_run / "best.pt").exists():
        raise CheckpointError(f"{src_run}/best.pt: the init_from source of {dataset} has no checkpoint; "
                              "train that run first")
    dev = device()
    torch.manual_seed(cfg.seed)
    mc = ModelConfig.from_config(cfg, model_name)
    model = build_model(mc).to(dev)                                  # an unknown model stops here, before any write
    center = CenterLoss(mc.n_classes, model.feature_dim, cfg.center_lr).to(dev)
    with run_lock(run):
        if run_is_done(run, cfg, dataset, model_name):              # finished by another process meanwhile
            return run
        remove_stale_temporaries(run)
        return _train_locked(cfg, dataset, model_name, run, digest, epochs, mc, model, center, src_run,
                             progress, stop_after)


def _train_locked(cfg, dataset, model_name, run, digest, epochs, mc, model, center, src_run, progress, stop_after):
    dev = device()
    data = prepare(cfg, dataset, progress)
    tr, va = data.split("train"), data.split("val")
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"{dataset}: empty train or validation split; check max_cells and split_fractions")
    if cfg.init_weights:
        model.load_state_dict(load_checkpoint(Path(cfg.init_weights)), strict=False)
    if src_run:  # transfer: start from the source dataset's best weights and class centres
        ck = load_checkpoint(src_run / "best.pt")
        check_run_identity(src_run, ck)
        model.load_state_dict(ck["model"])
        center.centers.copy_(ck["centers"])
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=True)
    steps_per_epoch = math.ceil(len(tr) / cfg.batch_size)
    total, warmup = epochs * steps_per_epoch, min(steps_per_epoch, 200)
    state = {"epoch": 0, "step": 0, "best_val": -1.0, "bad_epochs": 0, "log": []}

    last = run / "last.pt"
    if last.exists():  # resume
        ck = load_checkpoint(last)
        if ck.get("config_digest") != digest:
            raise CheckpointError(f"{last}: written by another config; delete {run} to start afresh")
        model.load_state_dict(ck["model"])
        center.load_state_dict(ck["center"])
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
    else:
        config_mod.save(cfg, run / "config.yaml")
        atomic_write_json(run / "provenance.json", {**provenance(), "dataset": dataset, "model": model_name,
                                                    "model_config": mc.__dict__, "preprocessing": data.preprocessing(),
                                                    "train_images": len(tr), "val_images": len(va),
                                                    "init_from": str(src_run) if src_run else None})

    labels = torch.as_tensor(tr.labels - 1)
    for epoch in range(state["epoch"], epochs):
        if cfg.patience is not None and state["bad_epochs"] >= cfg.patience:
            break
        seed = cfg.seed * 1000 + epoch          # per-epoch seeds make a resumed run identical
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model.train()
        t0, sums, n_seen, correct = time.time(), np.zeros(3), 0, 0
        bar = tqdm(list(batches(len(tr), cfg.batch_size, gen)), desc=f"{dataset}/{model_name} epoch {epoch + 1}/{epochs}",
                   disable=None if progress else True, leave=False, mininterval=5)
        for idx in bar:
            x = to_tensor(tr.images[idx])
            if cfg.flip or cfg.vflip:
                x = flip_batch(x, gen, horizontal=cfg.flip, vertical=cfg.vflip)
            x = rotate_batch(x, cfg.rotate_deg, gen)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x, y = x.to(dev), labels[idx].to(dev)
            for g in opt.param_groups:
                g["lr"] = _lr_at(state["step"], total, cfg.lr, warmup)
            with _autocast(cfg):
                logits, feats = model(x)
            ramp = min(1.0, state["step"] / (cfg.alpha_warmup_epochs * steps_per_epoch)) if cfg.alpha_warmup_epochs else 1.0
            loss, ls, lc = joint_loss(logits, feats, y, center, cfg.alpha * ramp, cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            center.update(feats, y)
            state["step"] += 1
            sums += np.array([loss.item(), ls.item(), lc.item()]) * len(idx)
            n_seen += len(idx)
            correct += (logits.argmax(1) == y).sum().item()
        train_s = time.time() - t0
        val_logits, _ = predict(model, va.images, cfg)
        val_acc = float((val_logits.argmax(1) + 1 == va.labels).mean())
        row = {"epoch": epoch + 1, "loss": sums[0] / n_seen, "loss_softmax": sums[1] / n_seen,
               "loss_center": sums[2] / n_seen, "train_acc": correct / n_seen, "val_acc": val_acc,
               "lr": opt.param_groups[0]["lr"], "images_per_s": n_seen / train_s, "epoch_s": time.time() - t0}
        row = {k: int(v) if k == "epoch" else float(v) for k, v in row.items()}  # plain types for weights_only
        state["log"].append(row)
        if val_acc > state["best_val"]:
            state["best_val"], state["bad_epochs"] = val_acc, 0
            atomic_torch_save(run / "best.pt", _payload(model, center, mc, data, digest, epoch + 1, val_acc))
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        atomic_torch_save(last, {"model": model.state_dict(), "center": center.state_dict(),
                                 "optimizer": opt.state_dict(), "state": state, "config_digest": digest})
        atomic_write_text(run / "log.csv", pd.DataFrame(state["log"]).to_csv(index=False))
        print(f"{dataset}/{model_name} epoch {epoch + 1}: loss {row['loss']:.3f} "
              f"(softmax {row['loss_softmax']:.3f}, center {row['loss_center']:.3f}) "
              f"train {row['train_acc']:.3f} val {val_acc:.3f} {row['images_per_s']:.0f} img/s", flush=True)
        if stop_after is not None and epoch + 1 >= stop_after:
            raise Interrupted(f"stopped after epoch {epoch + 1} (simulated interruption)")
    if state["best_val"] < 0 or not (run / "best.pt").exists():    # never a finished run without its model
        raise CheckpointError(f"{run}: training ended after {state['epoch']} of {epochs} epochs without writing "
                              "best.pt; done.json not written. Check epochs and patience, delete the run and retrain")
    atomic_write_json(run / "done.json", {"config_digest": digest, "epochs_run": state["epoch"],
                                          "best_val_acc": state["best_val"],
                                          "train_s": float(sum(r["epoch_s"] for r in state["log"]))})
    return run


def _payload(model, center, mc, data, digest, epoch, val_acc) -> dict:
    """best.pt. data_key (new, optional: older checkpoints lack it) is the canvas cache key, which covers
    the data listing digest (names, sizes, mtimes) and the preprocessing settings."""
    return {"model": model.state_dict(), "centers": center.centers.clone(), "model_config": dict(mc.__dict__),
            "preprocessing": data.preprocessing(), "epoch": epoch, "val_acc": val_acc,
            "config_digest": digest, "data_key": str(data.meta.get("key", ""))}


def load_run(run: Path):
    """(config, dataset, model name) of a run directory."""
    run = Path(run)
    if not (run / "config.yaml").exists() or not (run / "provenance.json").exists():
        raise CheckpointError(f"{run}: not a run directory (no config.yaml/provenance.json); "
                              "train one with `chromo train`")
    try:
        values = yaml.safe_load((run / "config.yaml").read_text())
        if not isinstance(values, dict):
            raise TypeError(f"config.yaml holds {type(values).__name__}, not a mapping")
        cfg = config_mod.from_values(values, str(run / "config.yaml"))     # null settings stay null
        prov = json.loads((run / "provenance.json").read_text())
        return cfg, prov["dataset"], prov["model"]
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError,
            config_mod.ConfigError) as e:
        raise CheckpointError(f"{run}: incompatible run directory ({type(e).__name__}: {e})") from e


def check_run_identity(run: Path, ck: dict) -> None:
    """A checkpoint of `run` must be that run's own: its config_digest is the digest of the run's
    config.yaml + provenance.json (Config.run_digest). A best.pt copied in from another run, or left by a
    retrain with other settings, is refused. A checkpoint without a digest cannot be checked and passes."""
    run = Path(run)
    stored = ck.get("config_digest") if isinstance(ck, dict) else None
    if not stored:
        return
    cfg, dataset, model = load_run(run)
    expected = cfg.run_digest(dataset, model)
    if stored != expected:
        raise CheckpointError(f"{run}/best.pt belongs to another run (its config digest {stored}, the run's "
                              f"{expected} for {dataset}/{model}); retrain or restore the run's own checkpoint")


def load_model(run: Path):
    """The best checkpoint of a run as (model in eval mode, payload), after check_run_identity."""
    ck = load_checkpoint(Path(run) / "best.pt")
    check_run_identity(run, ck)
    try:
        model = build_model(ModelConfig(**ck["model_config"]))
        model.load_state_dict(ck["model"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{Path(run) / 'best.pt'}: does not fit the model it names ({e})") from e
    return model.to(device()).eval(), ck


def extract_features(run: Path, split: str = "test", progress: bool = True, queries=None,
                     cell_every: int = 1) -> list[Path]:
    """Features, logits, labels, cells of one split, for each query style of the dataset: the native one
    (KI for pki3, MI for bioimlab) and, for KI data, simulated MI versions of the same chromosomes
    (`queries`, e.g. ("ki",), limits the styles; `cell_every` = k keeps every k-th cell in sorted order)."""
    cfg, dataset, _ = load_run(run)
    model, _ = load_model(run)
    s = prepare(cfg, dataset, progress).split(split)
    if cell_every > 1:
        keep = np.isin(s.cells, np.unique(s.cells)[::cell_every])
        s = type(s)(s.images[keep], s.labels[keep], s.cells[keep], s.paths[keep], s.index[keep])
    wanted = set(queries or ("ki", "mi"))
    queries = {NATIVE_QUERY[dataset]: s.images} if NATIVE_QUERY[dataset] in wanted else {}
    if NATIVE_QUERY[dataset] == "ki" and "mi" in wanted:
        queries["mi"] = mi_queries(s.images, cfg)
    out = []
    for q, imgs in queries.items():
        logits, feats = predict(model, imgs, cfg)
        name = split if cell_every == 1 else f"{split}-every{cell_every}"   # a subset never takes the full name
        path = Path(run) / f"features_{name}_{q}.npz"
        atomic_savez(path, features=feats, logits=logits, labels=s.labels, cells=s.cells, paths=s.paths, index=s.index)
        out.append(path)
    return out


def load_features(run: Path, split: str, query: str) -> dict:
    path = Path(run) / f"features_{split}_{query}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no feature file; run `chromo features --run {run} --split {split}`")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
