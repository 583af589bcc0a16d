"""Training loop (softmax + center loss), atomic checkpoints, resume, and feature extraction.

A run directory ``runs/<profile>/<dataset>/<model>/`` holds: config.yaml (resolved profile),
provenance.json (git commit, versions, hardware), log.csv (one row per epoch), last.pt and best.pt
(atomic writes; loaded with weights_only=True), done.json when finished, and the feature files
features_<split>_<query>.npz that every analysis notebook reads.
"""
from __future__ import annotations

import json
import math
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
from chromo.io import atomic_savez, atomic_torch_save, atomic_write_json, atomic_write_text, provenance
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
    """A finished run of exactly these training settings (Config.run_digest) exists."""
    done = Path(run) / "done.json"
    if not done.exists():
        return False
    return json.loads(done.read_text()).get("config_digest") == cfg.run_digest(dataset, model)


def train(cfg, dataset: str, model_name: str, progress: bool = True, stop_after: int | None = None) -> Path:
    """Train (or resume, or reuse a finished run of the same config) and return the run directory."""
    run = cfg.run_dir(dataset, model_name)
    digest = cfg.run_digest(dataset, model_name)
    if run_is_done(run, cfg, dataset, model_name):
        return run
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = prepare(cfg, dataset, progress)
    tr, va = data.split("train"), data.split("val")
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"{dataset}: empty train or validation split; check max_cells and split_fractions")
    dev = device()
    torch.manual_seed(cfg.seed)
    mc = ModelConfig.from_config(cfg, model_name)
    model = build_model(mc).to(dev)
    if cfg.init_weights:
        model.load_state_dict(load_checkpoint(Path(cfg.init_weights)), strict=False)
    center = CenterLoss(mc.n_classes, model.feature_dim, cfg.center_lr).to(dev)
    src, src_run = cfg.source_run(dataset, model_name)
    if src:
        src_run = train(cfg, src, model_name, progress)             # the source is trained first if missing
    if src_run:  # transfer: start from the source dataset's best weights and class centres
        ck = load_checkpoint(src_run / "best.pt")
        model.load_state_dict(ck["model"])
        center.centers.copy_(ck["centers"])
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=True)
    epochs = cfg.epochs_for(model_name, dataset)
    steps_per_epoch = math.ceil(len(tr) / cfg.batch_size)
    total, warmup = epochs * steps_per_epoch, min(steps_per_epoch, 200)
    state = {"epoch": 0, "step": 0, "best_val": -1.0, "bad_epochs": 0, "log": []}

    run.mkdir(parents=True, exist_ok=True)
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
    atomic_write_json(run / "done.json", {"config_digest": digest, "epochs_run": state["epoch"],
                                          "best_val_acc": state["best_val"],
                                          "train_s": float(sum(r["epoch_s"] for r in state["log"]))})
    return run


def _payload(model, center, mc, data, digest, epoch, val_acc) -> dict:
    return {"model": model.state_dict(), "centers": center.centers.clone(), "model_config": dict(mc.__dict__),
            "preprocessing": data.preprocessing(), "epoch": epoch, "val_acc": val_acc,
            "config_digest": digest}


def load_run(run: Path):
    """(config, dataset, model name) of a run directory."""
    run = Path(run)
    if not (run / "config.yaml").exists() or not (run / "provenance.json").exists():
        raise CheckpointError(f"{run}: not a run directory (no config.yaml/provenance.json); "
                              "train one with `chromo train`")
    try:
        values = yaml.safe_load((run / "config.yaml").read_text())
        cfg = config_mod.load(None, **values)
        prov = json.loads((run / "provenance.json").read_text())
        return cfg, prov["dataset"], prov["model"]
    except (yaml.YAMLError, json.JSONDecodeError, KeyError, TypeError, config_mod.ConfigError) as e:
        raise CheckpointError(f"{run}: incompatible run directory ({type(e).__name__}: {e})") from e


def load_model(run: Path):
    """The best checkpoint of a run as (model in eval mode, payload)."""
    ck = load_checkpoint(Path(run) / "best.pt")
    try:
        model = build_model(ModelConfig(**ck["model_config"]))
        model.load_state_dict(ck["model"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{Path(run) / 'best.pt'}: does not fit the model it names ({e})") from e
    return model.to(device()).eval(), ck


def extract_features(run: Path, split: str = "test", progress: bool = True) -> list[Path]:
    """Features, logits, labels, cells of one split, for each query style of the dataset: the native one
    (KI for pki3, MI for bioimlab) and, for KI data, simulated MI versions of the same chromosomes."""
    cfg, dataset, _ = load_run(run)
    model, _ = load_model(run)
    s = prepare(cfg, dataset, progress).split(split)
    queries = {NATIVE_QUERY[dataset]: s.images}
    if NATIVE_QUERY[dataset] == "ki":
        queries["mi"] = mi_queries(s.images, cfg)
    out = []
    for q, imgs in queries.items():
        logits, feats = predict(model, imgs, cfg)
        path = Path(run) / f"features_{split}_{q}.npz"
        atomic_savez(path, features=feats, logits=logits, labels=s.labels, cells=s.cells, paths=s.paths, index=s.index)
        out.append(path)
    return out


def load_features(run: Path, split: str, query: str) -> dict:
    path = Path(run) / f"features_{split}_{query}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no feature file; run `chromo features --run {run} --split {split}`")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
