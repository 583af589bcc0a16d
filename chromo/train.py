"""The training loop: softmax + alpha * center loss (eq. 3), SGD with warm-up and cosine decay, flips and
small rotations, a validation pass per epoch, atomic checkpoints and exact resume.

``train`` checks the settings, builds the model and takes the run's lock; ``_fit`` runs under it: ``_setup``
builds or resumes the state, ``_epoch`` runs one pass over the training split, ``_end_of_epoch`` validates,
checkpoints and logs, ``_finish`` writes done.json. The run directory
itself (file names, checkpoints, locks) is chromo.run.Run's.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from chromo import config as config_mod
from chromo import device
from chromo.data.augment import flip_batch, rotate_batch
from chromo.data.loader import Prepared, Split, batches, prepare, to_tensor
from chromo.inference import autocast, predict
from chromo.io import provenance
from chromo.losses import CenterLoss, joint_loss
from chromo.models import ModelConfig, build_model
from chromo.run import CheckpointError, Run, load_checkpoint


class Interrupted(RuntimeError):
    """Raised by ``train(stop_after=...)`` to simulate a run killed after a checkpoint."""


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Learning rate at optimiser step `step` of `total`: linear warm-up over `warmup` steps, then cosine
    decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train(cfg, dataset: str, model: str, progress: bool = True, stop_after: int | None = None) -> Run:
    """Train (or resume, or reuse a finished run of the same config) and return the run.

    The settings are checked first (config.validate). A source run (init_from) is trained first, under its
    own lock, and released before this run's lock is taken, so the two never wait on each other. Under the
    lock: a run finished meanwhile by another process is reused, temporary files of a killed write are
    removed, and done.json is written only beside a best.pt of this run."""
    config_mod.validate(cfg)
    run = Run.of(cfg, dataset, model)
    if run.is_done(cfg, dataset, model):
        return run
    epochs = cfg.epochs_for(model, dataset)
    if epochs < 1:
        raise config_mod.ConfigError(f"epochs for {dataset}/{model} must be at least 1, not {epochs}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    src, src_run = cfg.source_run(dataset, model)
    if src:
        src_run = train(cfg, src, model, progress).path        # the source is trained first if missing
    if src_run and not (Run(src_run).best.exists()):
        raise CheckpointError(f"{Run(src_run).best}: the init_from source of {dataset} has no checkpoint; "
                              "train that run first")
    torch.manual_seed(cfg.seed)
    mc = ModelConfig.from_config(cfg, model)
    net = build_model(mc).to(device())                              # an unknown model stops here, before any write
    center = CenterLoss(mc.n_classes, net.feature_dim, cfg.center_lr).to(device())
    with run.lock():
        if run.is_done(cfg, dataset, model):                   # finished by another process meanwhile
            return run
        run.remove_stale_temporaries()
        return _fit(cfg, dataset, run, epochs, mc, net, center, src_run, progress, stop_after)


def _fit(cfg, dataset, run: Run, epochs, mc, net, center, src_run, progress, stop_after) -> Run:
    """Under the run's lock: set up (or resume), the remaining epochs, then done.json."""
    s = _setup(cfg, dataset, run, epochs, mc, net, center, src_run, progress)
    for epoch in range(s.state["epoch"], epochs):
        if cfg.patience is not None and s.state["bad_epochs"] >= cfg.patience:
            break
        _end_of_epoch(s, epoch, *_epoch(s, epoch, progress))
        if stop_after is not None and epoch + 1 >= stop_after:
            raise Interrupted(f"stopped after epoch {epoch + 1} (simulated interruption)")
    return _finish(s)


@dataclass
class _Session:
    """Everything one training run carries from epoch to epoch."""
    cfg: object
    run: Run
    name: str                  # "<dataset>/<model>", for messages
    digest: str                # Config.run_digest: the run's identity
    epochs: int
    mc: ModelConfig
    net: torch.nn.Module       # the model, built from mc
    center: CenterLoss
    opt: torch.optim.Optimizer
    data: Prepared
    train: Split
    val: Split
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    state: dict = field(default_factory=lambda: {"epoch": 0, "step": 0, "best_val": -1.0, "bad_epochs": 0, "log": []})


def _setup(cfg, dataset, run: Run, epochs, mc, net, center, src_run, progress) -> _Session:
    """Data, initial weights (init_weights, or the init_from source's best weights and class centres),
    optimiser; then either the state of last.pt (resume) or a new run's config and provenance."""
    data = prepare(cfg, dataset, progress)
    tr, va = data.split("train"), data.split("val")
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"{dataset}: empty train or validation split; check max_cells and split_fractions")
    if cfg.init_weights:
        net.load_state_dict(load_checkpoint(Path(cfg.init_weights)), strict=False)
    if src_run:  # transfer
        ck = load_checkpoint(Run(src_run).best)
        Run(src_run).check_identity(ck)
        net.load_state_dict(ck["model"])
        center.centers.copy_(ck["centers"])
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=True)
    steps = math.ceil(len(tr) / cfg.batch_size)
    s = _Session(cfg, run, f"{dataset}/{mc.name}", cfg.run_digest(dataset, mc.name), epochs, mc, net, center,
                 opt, data, tr, va, steps, epochs * steps, min(steps, 200))
    if run.last.exists():  # resume
        ck = load_checkpoint(run.last)
        if ck.get("config_digest") != s.digest:
            raise CheckpointError(f"{run.last}: written by another config; delete {run} to start afresh")
        net.load_state_dict(ck["model"])
        center.load_state_dict(ck["center"])
        opt.load_state_dict(ck["optimizer"])
        s.state = ck["state"]
    else:
        run.start(cfg, {**provenance(), "dataset": dataset, "model": mc.name, "model_config": mc.__dict__,
                        "preprocessing": data.preprocessing(), "train_images": len(tr), "val_images": len(va),
                        "init_from": str(src_run) if src_run else None})
    return s


def _epoch(s: _Session, epoch: int, progress: bool) -> tuple[np.ndarray, int, int, float]:
    """One pass over the training split in a seeded order. Returns (image-weighted sums of the total,
    softmax and center losses, images seen, correct top-1, seconds)."""
    cfg, dev = s.cfg, device()
    seed = cfg.seed * 1000 + epoch          # per-epoch seeds make a resumed run identical
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(s.train.labels - 1)                     # 0-based class indices
    s.net.train()
    t0, sums, n_seen, correct = time.time(), np.zeros(3), 0, 0
    bar = tqdm(list(batches(len(s.train), cfg.batch_size, gen)), desc=f"{s.name} epoch {epoch + 1}/{s.epochs}",
               disable=None if progress else True, leave=False, mininterval=5)
    for idx in bar:
        x = to_tensor(s.train.images[idx])                           # [B, 1, C, C]
        if cfg.flip or cfg.vflip:
            x = flip_batch(x, gen, horizontal=cfg.flip, vertical=cfg.vflip)
        x = rotate_batch(x, cfg.rotate_deg, gen)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x, y = x.to(dev), labels[idx].to(dev)
        for g in s.opt.param_groups:
            g["lr"] = lr_at(s.state["step"], s.total_steps, cfg.lr, s.warmup_steps)
        with autocast(cfg):
            logits, feats = s.net(x)                               # [B, 24], [B, D]
        ramp = min(1.0, s.state["step"] / (cfg.alpha_warmup_epochs * s.steps_per_epoch)) if cfg.alpha_warmup_epochs else 1.0
        loss, ls, lc = joint_loss(logits, feats, y, s.center, cfg.alpha * ramp, cfg.label_smoothing)
        s.opt.zero_grad(set_to_none=True)
        loss.backward()
        s.opt.step()
        s.center.update(feats, y)
        s.state["step"] += 1
        sums += np.array([loss.item(), ls.item(), lc.item()]) * len(idx)
        n_seen += len(idx)
        correct += (logits.argmax(1) == y).sum().item()
    return sums, n_seen, correct, t0


def _end_of_epoch(s: _Session, epoch: int, sums, n_seen: int, correct: int, t0: float) -> dict:
    """Validation accuracy (softmax argmax); best.pt when it improves, last.pt and log.csv always."""
    train_s = time.time() - t0
    val_logits, _ = predict(s.net, s.val.images, s.cfg)
    val_acc = float((val_logits.argmax(1) + 1 == s.val.labels).mean())
    row = {"epoch": epoch + 1, "loss": sums[0] / n_seen, "loss_softmax": sums[1] / n_seen,
           "loss_center": sums[2] / n_seen, "train_acc": correct / n_seen, "val_acc": val_acc,
           "lr": s.opt.param_groups[0]["lr"], "images_per_s": n_seen / train_s, "epoch_s": time.time() - t0}
    row = {k: int(v) if k == "epoch" else float(v) for k, v in row.items()}  # plain types for weights_only
    st = s.state
    st["log"].append(row)
    if val_acc > st["best_val"]:
        st["best_val"], st["bad_epochs"] = val_acc, 0
        s.run.save_checkpoint(Run.BEST, {
            "model": s.net.state_dict(), "centers": s.center.centers.clone(), "model_config": dict(s.mc.__dict__),
            "preprocessing": s.data.preprocessing(), "epoch": epoch + 1, "val_acc": val_acc,
            "config_digest": s.digest,
            "data_key": str(s.data.meta.get("key", ""))})   # the cache key: data listing + preprocessing
    else:
        st["bad_epochs"] += 1
    st["epoch"] = epoch + 1
    s.run.save_checkpoint(Run.LAST, {"model": s.net.state_dict(), "center": s.center.state_dict(),
                                     "optimizer": s.opt.state_dict(), "state": st, "config_digest": s.digest})
    s.run.save_log(st["log"])
    print(f"{s.name} epoch {epoch + 1}: loss {row['loss']:.3f} (softmax {row['loss_softmax']:.3f}, center "
          f"{row['loss_center']:.3f}) train {row['train_acc']:.3f} val {val_acc:.3f} {row['images_per_s']:.0f} img/s",
          flush=True)
    return row


def _finish(s: _Session) -> Run:
    """done.json, only beside a best.pt of this run."""
    st = s.state
    if st["best_val"] < 0 or not s.run.best.exists():    # never a finished run without its model
        raise CheckpointError(f"{s.run}: training ended after {st['epoch']} of {s.epochs} epochs without writing "
                              "best.pt; done.json not written. Check epochs and patience, delete the run and retrain")
    s.run.mark_done({"config_digest": s.digest, "epochs_run": st["epoch"], "best_val_acc": st["best_val"],
                     "train_s": float(sum(r["epoch_s"] for r in st["log"]))})
    return s.run
