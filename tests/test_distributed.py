"""Data-parallel training (chromo.distributed, torchrun): two CPU processes (gloo) on a tiny synthetic run."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
import yaml

from chromo import config, distributed
from chromo.config import project_root
from chromo.distributed import DistributedError, World

MODEL = "eresnet-u1c0"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]   # `torchrun`, this interpreter


# --- the launch
# ----------------------------------------------------------------------------------------------
def test_without_torchrun_the_world_is_one_process():
    assert World.from_env({}) == World(0, 1, 0) and World.from_env({}).main


def test_torchrun_environment_is_read():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    assert World.from_env(env) == World(3, 4, 1) and not World.from_env(env).main


@pytest.mark.parametrize("missing", ["MASTER_ADDR", "MASTER_PORT"])
def test_a_missing_rendezvous_variable_is_named(missing):
    env = {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    del env[missing]
    with pytest.raises(DistributedError, match=f"{missing} not set"):
        World.from_env(env)


@pytest.mark.parametrize("env", [{"WORLD_SIZE": "2", "RANK": "2"}, {"WORLD_SIZE": "0", "RANK": "0"},
                                 {"WORLD_SIZE": "two", "RANK": "0"}])
def test_an_inconsistent_rank_or_size_is_refused(env):
    with pytest.raises(DistributedError, match="RANK|WORLD_SIZE"):
        World.from_env({**env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})


def test_collectives_are_the_identity_in_a_world_of_one():
    t = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_sum(t) is t and t.tolist() == [1.0, 2.0]
    assert distributed.broadcast_flag(True) and not distributed.broadcast_flag(False)
    distributed.assert_same("anything", torch.tensor(3.0))      # nothing to compare with


def test_checksum_sees_a_change_and_a_swap():
    a, b = torch.arange(6.0), torch.arange(6.0).flip(0)
    assert distributed.checksum(a) == distributed.checksum(a.clone())
    assert distributed.checksum(a) != distributed.checksum(a + 1e-3)
    assert distributed.checksum(a) != distributed.checksum(b)          # same sum, other order


def _diverging(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    distributed.init(World(rank, 2, rank))
    try:
        distributed.assert_same("weights", torch.tensor(float(rank)))   # rank 0 holds 0.0, rank 1 holds 1.0
        out.put("no error")
    except DistributedError as e:
        out.put(str(e))
    finally:
        distributed.shutdown()


def test_assert_same_fails_when_two_processes_differ():
    import torch.multiprocessing as mp

    from chromo.lab.bench import _free_port

    q = mp.get_context("spawn").Queue()
    mp.start_processes(_diverging, args=(_free_port(), q), nprocs=2, start_method="spawn")
    msgs = [q.get(timeout=60), q.get(timeout=60)]
    assert all("weights differs between processes: rank 0: 0.0, rank 1: 1.0" in m for m in msgs), msgs


# --- training on two processes
# ---------------------------------------------------------------------------------
def _profile(tmp_path, name: str, **changes) -> str:
    """A tiny profile on the synthetic set: seconds per epoch on 2 CPU cores. `changes` by setting name,
    written in their sections."""
    flat = {"profile": name, "runs_dir": str(tmp_path / "runs"), "results_dir": str(tmp_path / "res"),
            "cache_dir": str(project_root() / ".cache"), "canvas": 64, "hidden": 64,
            "max_cells": {"train": 20, "val": 6, "test": 4}, "epochs": {"default": 3}, "batch_size": 32,
            "lr": {"default": 0.05}, "bf16": False, "threads": 1, "tta": False, "label_smoothing": 0.0,
            "models": {"synthetic": [MODEL, "alexnet"]}, "init_from": {}, **changes}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"base": "smoke", **config.nest(flat, "the test profile")}))
    return str(path)


def _train(profile: str, nproc: int, model: str = MODEL) -> subprocess.CompletedProcess:
    launch = TORCHRUN + [f"--nproc_per_node={nproc}"] if nproc > 1 else [sys.executable]
    return subprocess.run(launch + ["-m", "chromo", "train", "--config", profile, "--dataset", "synthetic",
                                    "--model", model], capture_output=True, text=True, cwd=project_root(),
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _run_dir(tmp_path, name: str, model: str = MODEL):
    return tmp_path / "runs" / name / "synthetic" / model


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    """gloo, 2 processes against 1, the same seed and global batch (AlexNet without dropout: no batch
    statistics or dropout draws that depend on the share, so two processes compute what one does, up to
    the order of float sums): both finish; in the 2-process run every epoch checked that both processes
    hold the same weights and centres (distributed.assert_same, or the run fails), the loss falls, rank 0
    alone wrote the run (world size recorded), and the final validation accuracy is within 2 points of
    the one-process run's."""
    runs = {}
    for name, nproc in (("one", 1), ("two", 2)):
        r = _train(_profile(tmp_path, name, dropout=0.0, max_cells={"train": 12, "val": 6, "test": 4}), nproc,
                   "alexnet")
        assert r.returncode == 0, r.stderr[-3000:]
        runs[name] = r
    log1, log2 = (pd.read_csv(_run_dir(tmp_path, n, "alexnet") / "log.csv") for n in ("one", "two"))
    assert len(log2) == 3 and log2["loss_softmax"].iloc[-1] < log2["loss_softmax"].iloc[0]
    assert abs(log2["val_acc"].iloc[-1] - log1["val_acc"].iloc[-1]) <= 0.02, (log1["val_acc"],
                                                                              log2["val_acc"])
    # stronger: the same computation, epoch by epoch (measured: equal to about 1e-7)
    assert (log2["loss_softmax"] - log1["loss_softmax"]).abs().max() < 1e-4, (log1["loss_softmax"],
                                                                              log2["loss_softmax"])
    assert (log2["loss_center"] - log1["loss_center"]).abs().max() < 1e-3
    run2 = _run_dir(tmp_path, "two", "alexnet")
    assert json.loads((run2 / "provenance.json").read_text())["world_size"] == 2
    assert runs["two"].stdout.count(str(run2)) == 1                    # printed once, by rank 0
    assert (run2 / "done.json").exists()


@pytest.mark.slow
def test_eresnet_with_batch_norm_and_dropout_trains_on_two_processes(tmp_path):
    """The paper's EResNet (batch norm: statistics per process; dropout) on 2 processes: the weights and
    centres stay identical (checked every epoch) and the loss falls."""
    r = _train(_profile(tmp_path, "bn"), 2)
    assert r.returncode == 0, r.stderr[-3000:]
    log = pd.read_csv(_run_dir(tmp_path, "bn") / "log.csv")
    assert log["loss_softmax"].iloc[-1] < log["loss_softmax"].iloc[0] and len(log) == 3


@pytest.mark.slow
def test_a_killed_rank_then_a_rerun_resumes_on_any_number_of_processes(tmp_path):
    """kill -9 of one rank after the first checkpoint: torchrun stops the other; a rerun (here on ONE
    process) resumes from last.pt, not from scratch, and finishes."""
    profile = _profile(tmp_path, "kill", epochs={"default": 4})
    run = _run_dir(tmp_path, "kill")
    p = subprocess.Popen(TORCHRUN + ["--nproc_per_node=2", "-m", "chromo", "train", "--config", profile,
                                     "--dataset", "synthetic", "--model", MODEL], cwd=project_root(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        t0 = time.time()
        while not (run / "last.pt").exists() and time.time() - t0 < 300 and p.poll() is None:
            time.sleep(0.2)
        assert (run / "last.pt").exists(), "no checkpoint within 5 minutes"
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        assert len(kids) == 2, kids
        os.kill(int(kids[-1]), signal.SIGKILL)                         # one rank, mid-epoch 2
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode != 0 and not (run / "done.json").exists()
    done_before = len(pd.read_csv(run / "log.csv"))
    assert 1 <= done_before < 4
    again = _train(profile, 1)
    assert again.returncode == 0, again.stderr[-3000:]
    log = pd.read_csv(run / "log.csv")
    assert log["epoch"].tolist() == [1, 2, 3, 4] and (run / "done.json").exists()
    assert f"epoch {done_before}:" not in again.stdout                  # resumed after the last checkpoint


@pytest.mark.slow
def test_more_processes_than_the_batch_is_a_clear_error(tmp_path):
    r = _train(_profile(tmp_path, "big", batch_size=1), 2)
    assert r.returncode != 0
    assert "2 processes for synthetic: more than the batch size (1)" in r.stderr
    assert "start fewer processes" in r.stderr


def test_a_launch_without_rendezvous_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    r = subprocess.run([sys.executable, "-m", "chromo", "train", "--config", _profile(tmp_path, "rdzv"),
                        "--dataset", "synthetic", "--model", MODEL], capture_output=True, text=True,
                       cwd=project_root(), env={**env, "WORLD_SIZE": "2", "RANK": "0"})
    assert r.returncode == 2
    assert "WORLD_SIZE=2 but MASTER_ADDR and MASTER_PORT not set" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1                     # a message, not a traceback

