"""The training loop: softmax + alpha * center loss (eq. 3), SGD with warm-up and cosine decay, flips and
small rotations, a validation pass per epoch, atomic checkpoints and exact resume; in one process, or data
parallel over several (torchrun; chromo.distributed): each process takes its share of every global batch
of the same seeded order, gradients and center-loss updates are summed over the processes, validation is
shared out and gathered, and rank 0 alone writes the run directory.

``train`` checks the settings, builds the model and takes the run's lock; ``_fit`` runs under it: ``_setup``
builds or resumes the state, ``_epoch`` runs one pass over the training split, ``_end_of_epoch`` validates,
checkpoints and logs, ``_finish`` writes done.json. The run directory
itself (file names, checkpoints, locks) is chromo.run.Run's.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from chromo import config as config_mod
from chromo import device, distributed
from chromo.data.augment import flip_batch, optics_batch, rotate_batch
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


def train_step(net, center: CenterLoss, opt, x, y, cfg, alpha: float):
    """One optimiser step of eq. 3 on a batch x [B, 1, H, W] (augmented, on the device) with 0-based targets
    y: the forward pass under bf16 autocast (cfg.training.bf16), softmax + alpha * center loss, backward,
    the SGD step and the centres' update. Returns (loss, softmax loss, center loss, logits)."""
    with autocast(cfg):
        logits, feats = net(x)                                     # [B, 24], [B, D]
    loss, ls, lc = joint_loss(logits, feats, y, center, alpha, cfg.training.label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    center.update(feats, y)
    return loss, ls, lc, logits


def train(cfg, dataset: str, model: str, progress: bool = True, stop_after: int | None = None) -> Run:
    """Train (or resume, or reuse a finished run of the same config) and return the run.

    The settings are checked first (config.validate). A source run (init_from) is trained first, under its
    own lock, and released before this run's lock is taken, so the two never wait on each other. Under the
    lock: a run finished meanwhile by another process is reused, temporary files of a killed write are
    removed, and done.json is written only beside a best.pt of this run.

    Under torchrun every process calls train(); rank 0 takes the lock and writes, the others follow its
    decisions (chromo.distributed)."""
    config_mod.validate(cfg)
    world = distributed.init(distributed.World.from_env())
    run = Run.of(cfg, dataset, model)
    if run.is_done(cfg, dataset, model):
        return run
    epochs = cfg.epochs_for(model, dataset)
    if not epochs > 0:
        raise config_mod.ConfigError(f"epochs for {dataset}/{model} must be above 0, not {epochs}")
    if cfg.training.threads:
        torch.set_num_threads(cfg.training.threads)
    src, src_run = cfg.source_run(dataset)
    if src:
        src_run = train(cfg, src, model, progress).path        # the source is trained first if missing
    if src_run and not (Run(src_run).best.exists()):
        raise CheckpointError(f"{Run(src_run).best}: the init_from source of {dataset} has no checkpoint; "
                              "train that run first")
    torch.manual_seed(cfg.seed)
    mc = ModelConfig.from_config(cfg, model)
    # an unknown model stops here, before any write
    net = build_model(mc).to(device())
    center = CenterLoss(mc.n_classes, net.feature_dim, cfg.training.center_lr).to(device())
    with run.lock() if world.main else contextlib.nullcontext():
        if distributed.broadcast_flag(world.main and run.is_done(cfg, dataset, model)):   # finished meanwhile
            return run
        if world.main:
            run.remove_stale_temporaries()
        return _fit(cfg, dataset, run, epochs, mc, net, center, src_run, progress, stop_after)


def _fit(cfg, dataset, run: Run, epochs, mc, net, center, src_run, progress, stop_after) -> Run:
    """Under the run's lock: set up (or resume), the remaining epochs, then done.json."""
    s = _setup(cfg, dataset, run, epochs, mc, net, center, src_run, progress)
    for epoch in range(s.state["epoch"], math.ceil(epochs)):   # a fraction: the last epoch stops part way
        if cfg.training.patience is not None and s.state["bad_epochs"] >= cfg.training.patience:
            break
        _end_of_epoch(s, epoch, *_epoch(s, epoch, progress))
        if stop_after is not None and epoch + 1 >= stop_after:
            raise Interrupted(f"stopped after epoch {epoch + 1} (simulated interruption)")
    return _finish(s)


@dataclass
class _Trainer:
    """Everything one training run carries from epoch to epoch."""
    cfg: object
    run: Run
    world: distributed.World
    name: str                  # "<dataset>/<model>", for messages
    digest: str                # Config.run_digest: the run's identity
    epochs: int | float        # a fraction stops the last epoch at total_steps
    mc: ModelConfig
    net: torch.nn.Module       # the model, built from mc (wrapped in DistributedDataParallel in a world > 1)
    center: CenterLoss
    opt: torch.optim.Optimizer
    data: Prepared
    train: Split
    val: Split
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    state: dict = field(default_factory=lambda: {"epoch": 0, "step": 0, "best_val": -1.0, "bad_epochs": 0,
                                                 "log": []})


def _setup(cfg, dataset, run: Run, epochs, mc, net, center, src_run, progress) -> _Trainer:
    """Data, initial weights (init_weights, or the init_from source's best weights and class centres),
    optimiser; then either the state of last.pt (resume) or a new run's config and provenance."""
    world = distributed.world()
    if not world.main:
        distributed.barrier()                           # rank 0 builds a missing cache first ...
    data = prepare(cfg, dataset, progress and world.main)
    if world.main:
        distributed.barrier()                           # ... then the others read it
    tr, va = data.split("train"), data.split("val")
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"{dataset}: empty train or validation split; check max_cells and split_fractions")
    if world.size > min(cfg.training.batch_size, len(tr), len(va)):
        raise distributed.DistributedError(
            f"{world.size} processes for {dataset}: more than the batch size ({cfg.training.batch_size}), "
            f"the training images ({len(tr)}) or the validation images ({len(va)}); start fewer processes "
            "(--nproc_per_node)")
    if cfg.training.init_weights:
        net.load_state_dict(load_checkpoint(Path(cfg.training.init_weights)), strict=False)
    if src_run:  # transfer
        ck = load_checkpoint(Run(src_run).best)
        Run(src_run).check_identity(ck)
        net.load_state_dict(ck["model"])
        center.centers.copy_(ck["centers"])
    if cfg.training.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if world.size > 1:   # one process's gradients are the mean over all of them
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[world.local_rank] if device().type == "cuda" else None)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr_for(mc.name, dataset), momentum=cfg.training.momentum,
                          weight_decay=cfg.training.weight_decay,
                          nesterov=True)
    steps = math.ceil(len(tr) / cfg.training.batch_size)
    total = max(1, round(epochs * steps))
    s = _Trainer(cfg, run, world, f"{dataset}/{mc.name}", cfg.run_digest(dataset, mc.name), epochs, mc, net,
                 center,
                 # a short budget: half warm-up
                 opt, data, tr, va, steps, total, min(steps, 200, total // 2))
    if run.last.exists():  # resume, on any number of processes (the state counts global batches)
        ck = load_checkpoint(run.last)
        if ck.get("config_digest") != s.digest:
            raise CheckpointError(f"{run.last}: written by another config (the profile changed since it was "
                                  f"trained); keep it with `chromo runs move {run} <new folder>` or delete "
                                  f"{run}, then train afresh")
        _module(net).load_state_dict(ck["model"])
        center.load_state_dict(ck["center"])
        opt.load_state_dict(ck["optimizer"])
        s.state = ck["state"]
    elif world.main:
        run.start(cfg, {**provenance(), "dataset": dataset, "model": mc.name, "model_config": mc.__dict__,
                        "preprocessing": data.preprocessing(), "train_images": len(tr), "val_images": len(va),
                        "init_from": str(src_run) if src_run else None, "world_size": world.size})
    return s


def _module(net) -> torch.nn.Module:
    """The model itself, inside a DistributedDataParallel wrapper or not (checkpoints hold its weights)."""
    return net.module if isinstance(net, torch.nn.parallel.DistributedDataParallel) else net


def _epoch(s: _Trainer, epoch: int, progress: bool) -> tuple[np.ndarray, int, int, float]:
    """One pass over the training split in a seeded order (the same in every process; each takes its share
    of every global batch). Returns (image-weighted sums of the total, softmax and center losses, images
    seen, correct top-1; all summed over the processes), and the start time."""
    cfg, dev, w = s.cfg, device(), s.world
    seed = cfg.seed * 1000 + epoch          # per-epoch seeds make a resumed run identical
    torch.manual_seed(seed if w.main else seed * 1_000_003 + w.rank)     # dropout: its own draws per process
    # the order and the augmentation: the same in every process
    gen = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(s.train.labels - 1)                     # 0-based class indices
    s.net.train()
    t0, sums, n_seen, correct = time.time(), np.zeros(3), 0, 0
    bar = tqdm(list(batches(len(s.train), cfg.training.batch_size, gen)),
               desc=f"{s.name} epoch {epoch + 1}/{math.ceil(s.epochs)}",
               disable=None if (progress and w.main) else True, leave=False, mininterval=5)
    for idx in bar:
        if s.state["step"] >= s.total_steps:   # the end of a fractional epoch budget
            break
        if len(idx) < w.size:               # a last global batch too small to share out: skipped by all
            continue
        share = None if w.size == 1 else (len(idx), np.arange(len(idx))[w.rank::w.size])
        idx = idx[w.rank::w.size]           # this process's share of the global batch
        x = to_tensor(s.train.images[idx])                           # [B, 1, C, C]
        # each image flipped and turned as in a one-process run
        if cfg.training.flip or cfg.training.vflip:
            x = flip_batch(x, gen, horizontal=cfg.training.flip, vertical=cfg.training.vflip, share=share)
        x = rotate_batch(x, cfg.training.rotate_deg, gen, share=share)
        x = optics_batch(x, cfg.training.optics, gen, share=share,
                         blur_scale=max(x.shape[-2:]) / 64 if cfg.training.optics_blur_scaled else 1.0)
        if cfg.training.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x, y = x.to(dev), labels[idx].to(dev)
        for g in s.opt.param_groups:
            g["lr"] = lr_at(s.state["step"], s.total_steps, cfg.lr_for(s.mc.name, s.data.dataset),
                            s.warmup_steps)
        warm = cfg.training.alpha_warmup_epochs * s.steps_per_epoch
        alpha = cfg.training.alpha * (min(1.0, s.state["step"] / warm) if warm else 1.0)
        loss, ls, lc, logits = train_step(s.net, s.center, s.opt, x, y, cfg, alpha)
        s.state["step"] += 1
        sums += np.array([loss.item(), ls.item(), lc.item()]) * len(idx)
        n_seen += len(idx)
        correct += (logits.argmax(1) == y).sum().item()
    total = distributed.all_reduce_sum(torch.tensor([*sums, n_seen, correct], dtype=torch.float64))
    return total[:3].numpy(), int(total[3]), int(total[4]), t0


def _end_of_epoch(s: _Trainer, epoch: int, sums, n_seen: int, correct: int, t0: float) -> dict:
    """Validation accuracy (softmax argmax; each process scores its share, the counts are summed); best.pt
    when it improves, last.pt and log.csv always (rank 0). Every process must hold the same weights and
    class centres here (checked)."""
    train_s = time.time() - t0
    net, w = _module(s.net), s.world
    distributed.assert_same(f"{s.name}: the weights and class centres after epoch {epoch + 1}",
                            distributed.checksum(*net.parameters(), s.center.centers))
    part = np.arange(len(s.val))[w.rank::w.size]
    val_logits, _ = predict(net, s.val.images[part], s.cfg)
    hits = distributed.all_reduce_sum(torch.tensor([float((val_logits.argmax(1) + 1
                                                           == s.val.labels[part]).sum()),
                                                    float(len(part))], dtype=torch.float64))
    val_acc = float(hits[0] / hits[1])
    row = {"epoch": epoch + 1, "loss": sums[0] / n_seen, "loss_softmax": sums[1] / n_seen,
           "loss_center": sums[2] / n_seen, "train_acc": correct / n_seen, "val_acc": val_acc,
           "lr": s.opt.param_groups[0]["lr"], "images_per_s": n_seen / train_s, "epoch_s": time.time() - t0}
    row = {k: int(v) if k == "epoch" else float(v) for k, v in row.items()}  # plain types for weights_only
    st = s.state
    st["log"].append(row)
    if val_acc > st["best_val"]:
        st["best_val"], st["bad_epochs"] = val_acc, 0
        if w.main:
            s.run.save_checkpoint(Run.BEST, {
                "model": net.state_dict(), "centers": s.center.centers.clone(),
                "model_config": dict(s.mc.__dict__),
                "preprocessing": s.data.preprocessing(), "epoch": epoch + 1, "val_acc": val_acc,
                "config_digest": s.digest,
                "data_key": str(s.data.meta.get("key", ""))})   # the cache key: data listing + preprocessing
    else:
        st["bad_epochs"] += 1
    st["epoch"] = epoch + 1
    if not w.main:
        return row
    s.run.save_checkpoint(Run.LAST, {"model": net.state_dict(), "center": s.center.state_dict(),
                                     "optimizer": s.opt.state_dict(), "state": st, "config_digest": s.digest})
    s.run.save_log(st["log"])
    print(f"{s.name} epoch {epoch + 1}: loss {row['loss']:.3f} (softmax {row['loss_softmax']:.3f}, center "
          f"{row['loss_center']:.3f}) train {row['train_acc']:.3f} val {val_acc:.3f} "
          f"{row['images_per_s']:.0f} img/s",
          flush=True)
    return row


def _finish(s: _Trainer) -> Run:
    """done.json, only beside a best.pt of this run (rank 0; the others wait for it)."""
    st = s.state
    if not s.world.main:
        distributed.barrier()
        return s.run
    if st["best_val"] < 0 or not s.run.best.exists():    # never a finished run without its model
        raise CheckpointError(f"{s.run}: training ended after {st['epoch']} of {s.epochs} epochs without "
                              "writing best.pt; done.json not written. Check epochs and patience, delete "
                              "the run and retrain")
    s.run.mark_done({"config_digest": s.digest, "epochs_run": st["epoch"], "best_val_acc": st["best_val"],
                     "train_s": float(sum(r["epoch_s"] for r in st["log"]))})
    distributed.barrier()
    return s.run
