"""Benchmarks that print figures (not timed tests). python -m chromo.lab.bench ...

    data [--config cpu]        cache build time (without and with orientation), loader throughput
    train [--config cpu]       EResNet training images/s and share of measured peak
    train --world-size 2       data-parallel training images/s, 2 processes against 1
    matching [--json]          ms per 46-chromosome cell and the beta-sweep time
    classify [--config cpu]    seconds per cell of `chromo classify`, model loaded
    inference [--config cpu]   images/s of inference (predict), weights channels-last or not
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from chromo import N_CLASSES, PAPER_MODEL, device

def bench_data(cfg, dataset: str) -> dict:
    from chromo.data.augment import flip_batch
    from chromo.data.canvas import build_cache
    from chromo.data.loader import batches, prepare, to_tensor
    from chromo.data.manifest import build_manifest

    root = None if dataset == "synthetic" else cfg.data_root()
    t = time.perf_counter()
    manifest, _ = build_manifest(dataset, root)
    manifest_s = time.perf_counter() - t
    tmp = tempfile.mkdtemp()
    try:   # the manifest again, its image headers remembered (the second of two builds with a header cache)
        for _ in range(2):
            t = time.perf_counter()
            build_manifest(dataset, root, header_cache=Path(tmp) / "headers.json")
            manifest_cached_s = time.perf_counter() - t
    finally:
        shutil.rmtree(tmp)
    build_s = {}
    for orient, straighten in ((False, False), (True, False), (True, True)):  # plain, oriented, straightened
        tmp = tempfile.mkdtemp()
        try:
            t = time.perf_counter()
            build_cache(manifest, root, tmp, cfg.data.canvas, cfg.data.scale_mode, progress=False,
                        orient=orient,
                        straighten=straighten)
            build_s[orient, straighten] = time.perf_counter() - t
        finally:
            shutil.rmtree(tmp)
    tr = prepare(cfg, dataset, progress=False).split("train")
    gen = torch.Generator().manual_seed(0)
    n, t = 0, time.perf_counter()
    for _ in range(3):  # three epochs of batches, as training draws them (index, to float, flip)
        for idx in batches(len(tr), cfg.training.batch_size, gen):
            x = flip_batch(to_tensor(tr.images[idx], cfg.training.channels_last), gen, cfg.training.flip,
                           cfg.training.vflip)
            n += len(x)
    loader = n / (time.perf_counter() - t)
    per_image = lambda a, b: round(1000 * (build_s[a] - build_s[b]) / len(manifest), 3)  # noqa: E731
    return {"dataset": dataset, "images": len(manifest), "canvas": cfg.data.canvas,
            "manifest_s": round(manifest_s, 2),
            "manifest_cached_s": round(manifest_cached_s, 2),
            "manifest_speedup": round(manifest_s / max(manifest_cached_s, 1e-9), 1),
            "cache_build_s": round(build_s[False, False], 2),
            "cache_build_oriented_s": round(build_s[True, False], 2),
            "cache_build_straightened_s": round(build_s[True, True], 2),
            "orient_ms_per_image": per_image((True, False), (False, False)),
            "orient_target_ms_per_image": 1.0,
            "straighten_ms_per_image": per_image((True, True), (True, False)),
            "loader_images_per_s": round(loader), "target_images_per_s": 5000}


def _peak_flops(dtype) -> float:
    """Measured matmul throughput (FLOP/s) of this device in `dtype`: the 'peak' we compare against."""
    dev = device().type
    n = 2048
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(2):
        a @ b
    reps, t = 5, time.perf_counter()
    for _ in range(reps):
        a @ b
    if dev == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def bench_train(cfg, model_name: str = PAPER_MODEL, steps: int = 6, compiled: bool = False) -> dict:
    """Training images per second of one model (random input at the profile's canvas, batch, bf16 and
    memory format) and the fraction of the measured matmul peak it reaches. compiled: the same steps once
    eagerly and once through torch.compile (default inductor backend), with the ratio and the compile time."""
    from torch.utils.flop_counter import FlopCounterMode

    from chromo.config import canvas_hw
    from chromo.losses import CenterLoss
    from chromo.models import ModelConfig, build_model
    from chromo.train import train_step

    dev = device().type
    mc = ModelConfig.from_config(cfg, model_name)
    net = build_model(mc).to(dev)
    if cfg.training.channels_last:
        net = net.to(memory_format=torch.channels_last)
    center = CenterLoss(N_CLASSES, net.feature_dim).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(cfg.training.batch_size, 1, *canvas_hw(cfg.data.canvas), device=dev)
    if cfg.training.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 24, (cfg.training.batch_size,), device=dev)
    with FlopCounterMode(display=False) as fc:
        net(x[:1])
    fwd = fc.get_total_flops()

    def step(model):
        train_step(model, center, opt, x, y, cfg, cfg.training.alpha)

    # (images/s over `steps` steps, seconds of the first step)
    def images_per_s(model) -> tuple[float, float]:
        t = time.perf_counter()
        step(model)
        _sync(dev)
        first = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(steps):
            step(model)
        _sync(dev)
        return steps * cfg.training.batch_size / (time.perf_counter() - t), first

    ips, _ = images_per_s(net)
    peak = _peak_flops(torch.bfloat16 if cfg.training.bf16 else torch.float32)
    achieved = ips * 3 * fwd  # forward + backward ~ 3x forward
    out = {"model": model_name, "backbone": mc.backbone, "canvas": cfg.data.canvas,
           "batch": cfg.training.batch_size,
           "bf16": cfg.training.bf16, "channels_last": cfg.training.channels_last, "device": dev,
           "threads": torch.get_num_threads(),
           "train_images_per_s": round(ips, 1), "gflop_per_image_fwd": round(fwd / 1e9, 3),
           "measured_matmul_peak_gflops": round(peak / 1e9, 1), "ratio_to_peak": round(achieved / peak, 3)}
    if compiled:
        ips_c, first = images_per_s(torch.compile(net))
        out.update(compiled_train_images_per_s=round(ips_c, 1), compiled_over_eager=round(ips_c / ips, 3),
                   compile_s=round(first, 1))
    if dev == "cuda":
        out["gpu_utilisation_percent"] = torch.cuda.utilization()
    return out


def _sync(dev: str) -> None:
    if dev == "cuda":
        torch.cuda.synchronize()


def bench_matching(cfg, cells: int = 200) -> dict:
    """LFV + LRd + assignment for one 46-chromosome cell (median over random cells) and beta 1..45 over
    the pki3 test cells when the cpu run's features exist (else random features of the same shape)."""
    from chromo.cell import predict_cell
    from chromo.matching import label_feature_vectors
    from chromo.run import Run

    rng = np.random.default_rng(0)
    dim = 512
    val = rng.normal(size=(2000, dim)).astype(np.float32)
    lfv = label_feature_vectors(val, np.arange(2000) % 24 + 1)
    times = []
    for _ in range(cells):
        f = rng.normal(size=(46, dim)).astype(np.float32)
        logits = rng.normal(size=(46, 24))
        t = time.perf_counter()
        predict_cell(logits, f, {"cosine": lfv}, 40)      # what classify and the evaluation run per cell
        times.append(time.perf_counter() - t)
    out = {"ms_per_cell": round(1000 * float(np.median(times)), 3), "target_ms_per_cell": 2.0}
    run = cfg.run_dir("pki3", PAPER_MODEL)
    from chromo.evaluate import beta_sweep

    if Run(run).has_features("test", "ki"):
        t = time.perf_counter()
        sweep = beta_sweep(run, range(1, 46))
        out.update(beta_sweep_s=round(time.perf_counter() - t, 2),
                   beta_sweep_cells=int(sweep["cell"].nunique()),
                   beta_sweep_run=str(run.relative_to(run.parents[3])))
    else:
        out["beta_sweep_s"] = None
        out["beta_sweep_note"] = f"no features at {run}; run the main job first"
    return out


def bench_classify(cfg, dataset: str = "pki3", model: str = PAPER_MODEL, cells: int = 5) -> dict:
    """Seconds per cell of `chromo classify` once the model is loaded (read, predict, LFV, LRd, assignment,
    write assignments.csv, karyotype.json and karyogram.png), over test cells of the profile's run."""
    from chromo.classify import Classifier, cell_files
    from chromo.data.loader import prepare

    run = cfg.run_dir(dataset, model)
    t = time.perf_counter()
    clf = Classifier(run)
    load_s = time.perf_counter() - t
    sp = prepare(cfg, dataset, progress=False).splits
    root = cfg.data_root()
    times = []
    tmp = tempfile.mkdtemp()
    try:
        for cell in sp[sp["split"] == "test"]["cell"].head(cells):
            folder = root / "pki3" / "single_clase" / f"{cell}.tiff" if dataset == "pki3" else \
                root / "bioimlab" / "single_chromosomes" / cell
            files, _ = cell_files(folder)
            t = time.perf_counter()
            clf.write(files, f"{tmp}/{cell}")
            times.append(time.perf_counter() - t)
    finally:
        shutil.rmtree(tmp)
    return {"run": f"{cfg.profile}/{dataset}/{model}", "model_load_s": round(load_s, 2), "cells": len(times),
            "s_per_cell_median": round(float(np.median(times)), 3), "s_per_cell_max": round(max(times), 3),
            "target_s_per_cell": 2.0}


def bench_inference(cfg, dataset: str = "pki3", model: str = PAPER_MODEL, n: int = 1024) -> dict:
    """Images/s of `inference.predict` on n validation images of the profile's trained run (flip averaging
    as the profile sets it), images and weights in the default memory format (channels_last off) and both in
    channels-last (on; predict converts the weights too)."""
    from chromo.data.loader import prepare
    from chromo.inference import predict
    from chromo.run import Run

    run = Run.of(cfg, dataset, model)
    if not run.is_done(cfg, dataset, model):
        raise SystemExit(f"{run.path}: no finished run; train it first (chromo train --config {cfg.profile})")
    images = prepare(cfg, dataset, progress=False).split("val").images[:n]
    ips = {}
    for layout in ("contiguous", "channels_last"):
        net, _ = run.load_model(device())
        rcfg = copy.copy(cfg)
        rcfg.training.channels_last = layout == "channels_last"
        predict(net, images[:64], rcfg)                  # warm-up
        t = time.perf_counter()
        predict(net, images, rcfg)
        ips[layout] = len(images) / (time.perf_counter() - t)
    return {"run": f"{cfg.profile}/{dataset}/{model}", "images": len(images), "tta": cfg.training.tta,
            "bf16": cfg.training.bf16,
            "images_per_s_contiguous_weights": round(ips["contiguous"], 1),
            "images_per_s_channels_last": round(ips["channels_last"], 1),
            "ratio": round(ips["channels_last"] / ips["contiguous"], 2)}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _world_worker(rank: int, size: int, port: int, cfg, model_name: str, steps: int, threads: int,
                  out) -> None:
    """One process of bench_train_world: DDP steps on random images, its share of the global batch."""
    import os

    from chromo import distributed
    from chromo.config import canvas_hw
    from chromo.losses import CenterLoss
    from chromo.models import ModelConfig, build_model
    from chromo.train import train_step

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    w = distributed.init(distributed.World(rank, size, rank))
    try:
        torch.manual_seed(0)
        dev = device()
        net = build_model(ModelConfig.from_config(cfg, model_name)).to(dev)
        center = CenterLoss(N_CLASSES, net.feature_dim).to(dev)
        if size > 1:
            net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[rank] if dev.type == "cuda"
                                                            else None)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        # this process's share of the global batch
        b = cfg.training.batch_size // size
        x = torch.rand(b, 1, *canvas_hw(cfg.data.canvas), device=dev)
        y = torch.randint(0, N_CLASSES, (b,), device=dev)

        def step():
            train_step(net, center, opt, x, y, cfg, cfg.training.alpha)

        step()
        distributed.barrier()
        t = time.perf_counter()
        for _ in range(steps):
            step()
        distributed.barrier()
        if w.main:
            out.put(steps * b * size / (time.perf_counter() - t))
    finally:
        distributed.shutdown()


def bench_train_world(cfg, model_name: str = PAPER_MODEL, world_size: int = 2, steps: int = 10) -> dict:
    """Training images/s of `world_size` data-parallel processes (gloo on CPUs, NCCL on GPUs; the CPU cores
    shared out between them) against one process, at the same global batch: the overhead of the
    distributed path as a ratio."""
    import os

    import torch.multiprocessing as mp

    cores = os.cpu_count() or 1
    ips = {}
    for size in (1, world_size):
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        mp.start_processes(_world_worker, args=(size, _free_port(), cfg, model_name, steps,
                                                max(1, (cfg.training.threads or cores) // size), q),
                           nprocs=size, start_method="spawn")
        ips[size] = q.get()
    return {"model": model_name, "canvas": cfg.data.canvas, "global_batch": cfg.training.batch_size,
            "bf16": cfg.training.bf16,
            "device": device().type, "cores": cores, "world_size": world_size,
            "images_per_s_1_process": round(ips[1], 1),
            f"images_per_s_{world_size}_processes": round(ips[world_size], 1),
            "ratio": round(ips[world_size] / ips[1], 3),
            "note": "ratio > 1: the processes gain; on one machine's CPU cores, the processes share the "
                    "same cores"}


def main(argv=None) -> int:
    from chromo import config

    ap = argparse.ArgumentParser(prog="python -m chromo.lab.bench")
    ap.add_argument("what", choices=["data", "train", "matching", "classify", "inference"])
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--dataset", default="pki3")
    ap.add_argument("--model", default=PAPER_MODEL)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--world-size", type=int, default=1,
                    help="train: processes of data-parallel training (>= 2: "
                    "measured against one process)")
    ap.add_argument("--compile", action="store_true", help="train: also through torch.compile (eager vs "
                    "compiled images/s, and the compile time)")
    a = ap.parse_args(argv)
    cfg = config.load(a.config)
    if cfg.training.threads:
        torch.set_num_threads(cfg.training.threads)
    train = (lambda: bench_train_world(cfg, a.model, a.world_size)) if a.world_size > 1 else \
        (lambda: bench_train(cfg, a.model, compiled=a.compile))
    res = {"data": lambda: bench_data(cfg, a.dataset), "train": train,
           "matching": lambda: bench_matching(cfg), "classify": lambda: bench_classify(cfg, a.dataset,
                                                                                       a.model),
           "inference": lambda: bench_inference(cfg, a.dataset, a.model)}[a.what]()
    res["profile"] = cfg.profile
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:>30}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
