"""Bad configuration, training and data-folder input: each stops with one line naming the thing and what to
do (exit 2 from the command line), and writes or removes nothing.

One tiny synthetic run (one epoch, a few cells) is trained once for the module and copied per test."""
import errno
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from chromo import cli, config, io
from chromo.run import CheckpointError, Run, load_checkpoint
from chromo import train as train_mod
from chromo.train import Interrupted, train

MODEL = "eresnet-u1c0"
ROOT = config.project_root()


def _yaml(tmp_path, text, name="bad.yaml"):
    """A config file: the smoke profile on a few cells, writing under tmp_path, with `text` (settings by
    section, such as "training: {patience: 0}") merged in group by group."""
    values = {"base": "smoke", "runs_dir": str(tmp_path / "runs"), "results_dir": str(tmp_path / "res"),
              "cache_dir": str(ROOT / ".cache"), "data": {"max_cells": {"train": 2, "val": 1, "test": 1}},
              "training": {"hidden": 32}}
    p = tmp_path / name
    p.write_text(yaml.safe_dump(config.merge(values, yaml.safe_load(text) or {}), sort_keys=False))
    return p


def _tiny(runs_dir, **kw):
    return config.load("smoke", runs_dir=str(runs_dir), results_dir=str(runs_dir.parent / "res"),
                       cache_dir=str(ROOT / ".cache"), max_cells={"train": 2, "val": 1, "test": 1}, hidden=32,
                       epochs={"default": 1}, **kw)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch synthetic run stopped just before done.json: best.pt, last.pt, config.yaml, ..."""
    runs = tmp_path_factory.mktemp("trained") / "runs"
    cfg = _tiny(runs)
    with pytest.raises(Interrupted):
        train(cfg, "synthetic", MODEL, progress=False, stop_after=1)
    return cfg.run_dir("synthetic", MODEL)


def _copy(run, tmp_path, **kw):
    """The trained run copied under tmp_path/runs, and its config (same training settings unless kw)."""
    cfg = _tiny(tmp_path / "runs", **kw)
    dst = cfg.run_dir("synthetic", MODEL)
    shutil.copytree(run, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return cfg, dst


# --- two trainings of one run directory ----------------------------------------------------------------
HOLD = ("import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.pwrite(fd, f'{os.getpid()} otherhost 2024-01-01T00:00:00'.encode(), 0)\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n")


def test_second_train_on_a_locked_run_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path, capsys):
    cfg_path = _yaml(tmp_path, "training: {epochs: {default: 1}}\n")
    run = config.load(cfg_path).run_dir("synthetic", MODEL)
    run.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run / ".lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc = cli.main(["train", "--config", str(cfg_path), "--dataset", "synthetic", "--model", MODEL])
        err = capsys.readouterr().err
        assert rc == 2
        assert f"is being trained by another process (pid {holder.pid}" in err and "wait" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert _files(run) == [".lock"]                       # nothing written by the refused train
        with pytest.raises(CheckpointError, match=f"pid {holder.pid} on otherhost"):
            with Run(run).lock():
                pass
    finally:
        holder.kill()                                         # kill -9: the kernel drops the flock
        holder.wait()
    with Run(run).lock() as lock:                               # no stale lock survives the killed process
        assert lock.read_text().split()[0] == str(os.getpid())
    assert lock.read_text() == ""                             # released: emptied, never removed


def test_source_and_target_locks_are_not_nested(tmp_path, monkeypatch):
    """train() of a run with init_from trains the source under the source's lock and releases it before
    taking the target's; a stub stands in for the training itself."""
    cfg = _tiny(tmp_path / "runs", init_from={"bioimlab": "pki3"})
    src, dst = cfg.run_dir("pki3", MODEL), cfg.run_dir("bioimlab", MODEL)
    calls = []

    def fake(cfg, dataset, run, *a, **k):
        calls.append(dataset)
        if dataset == "bioimlab":
            with Run(src).lock():                               # the source's lock is free again
                pass
            with pytest.raises(CheckpointError, match="being trained by another process"):
                with Run(dst).lock():                           # ... and the target's is held
                    pass
        run.best.write_bytes(b"stub")
        return run

    monkeypatch.setattr(train_mod, "_fit", fake)
    assert train(cfg, "bioimlab", MODEL, progress=False).path == dst
    assert calls == ["pki3", "bioimlab"]


# --- a checkpoint that belongs to another run ------------------------------------------------------------
def test_best_checkpoint_of_another_run_is_refused(trained, tmp_path, capsys):
    cfg, run = _copy(trained, tmp_path, seed=1)               # same files, but this run's settings say seed 1
    config.save(cfg, run / "config.yaml")
    before = _files(run)
    rc = cli.main(["features", "--run", str(run), "--split", "test"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{run}/best.pt belongs to another run" in err
    assert "retrain or restore the run's own checkpoint" in err and len(err.strip().splitlines()) == 1
    assert _files(run) == before                              # no feature file written
    # the run's own checkpoint passes; a null setting in config.yaml stays null (patience: null)
    ck = load_checkpoint(trained / "best.pt")
    Run(trained).check_identity(ck)
    assert Run(trained).settings()[0].training.patience is None
    assert ck["data_key"]                                     # new checkpoints carry the data cache key


def test_reference_runs_keep_their_identity():
    cfg = config.load("cpu")
    for d in ("pki3", "bioimlab"):
        run = cfg.run_dir(d, MODEL)
        if not (run / "done.json").exists():
            continue
        stored = json.loads((run / "done.json").read_text())["config_digest"]
        assert cfg.run_digest(d, MODEL) == stored
        rcfg, dataset, model = Run(run).settings()
        assert rcfg.run_digest(dataset, model) == stored      # what check_run_identity recomputes


# --- --data-dir > CHROMO_DATA > config data_dir ---------------------------------------------------------
def test_data_dir_flag_beats_environment_with_a_note(tiny_pki3, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "_NOTED", set())
    monkeypatch.setenv("CHROMO_DATA", str(tmp_path / "nowhere"))
    rc = cli.main(["data", "summary", "--config", "smoke", "--dataset", "pki3", "--data-dir", str(tiny_pki3),
                   "--json"])
    out, err = capsys.readouterr()
    assert rc == 0 and json.loads(out)["data_dir"] == str(tiny_pki3) and json.loads(out)["cells"] == 2
    assert "note: using data directory" in err and "--data-dir" in err and "CHROMO_DATA" in err
    assert len(err.strip().splitlines()) == 1
    # in code: the environment beats the config's data_dir, and says so once
    cfg = config.load("smoke", data_dir=str(tmp_path / "from-config"))
    monkeypatch.setenv("CHROMO_DATA", str(tiny_pki3))
    assert cfg.data_root() == tiny_pki3 and cfg.data_root() == tiny_pki3
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and "from-config" in err and "environment variable CHROMO_DATA" in err
    # --data-dir is relative to the working directory, and a run records it as data_dir
    monkeypatch.chdir(tiny_pki3.parent)
    cfg = config.load("smoke", cli_data_dir=tiny_pki3.name)
    assert cfg.data_root() == tiny_pki3 and cfg.data_dir == str(tiny_pki3)
    assert cfg.run_digest("pki3", MODEL) == config.load("smoke").run_digest("pki3", MODEL)


# --- settings of the wrong type or outside their range, checked before anything runs ---------------------
EPOCHS = ("training: epochs must be a mapping of run keys (default, a data set, a model, data set/model) to "
          "numbers above 0, such as {default: 8} "
          "(fractions allowed), not ")
FOLDS = "data: val_fold must be [k, K]: fold k (0..K-1) of K >= 2 folds, or null, not "


@pytest.mark.parametrize("text, words", [
    ("training: {epochs: {default: -3}}", EPOCHS + "{'default': -3}"),
    ("training: {epochs: {default: 2, synthetic/eresnet-u1c0: 0}}",
     EPOCHS + "{'default': 2, 'synthetic/eresnet-u1c0': 0}"),
    ("training: {epochs: {default: two}}", EPOCHS + "{'default': 'two'}"),
    ("training: {epochs: {default: .inf}}", EPOCHS + "{'default': inf}"),
    ("training: {epochs: 0}", "training: epochs must be a mapping, not 0"),
    ("training: {lr: {default: 0.05, bio: 0.02}}", "training: lr must be a mapping of run keys"),
    ("training: {patience: 0}", "training: patience must be at least 1"),
    ("training: {lr: fast}", "training: lr must be a mapping, not 'fast'"),
    ("training: {lr: 0.05}", "training: lr must be a mapping, not 0.05"),
    ("training: {lr: {default: 0.05, bioimlab: 0}}", "training: lr must be a mapping of run keys (default, a "
     "data set, a model, data set/model) to positive rates, such as {default: 0.05, bioimlab: 0.02}, not "
     "{'default': 0.05, 'bioimlab': 0}"),
    ("data: {canvas: '64'}", "data: canvas must be an integer or a list, not '64'"),
    ("training: {flip: 'off'}", "training: flip must be true or false, not 'off'"),
    ("training: {batch_size: 0}", "training: batch_size must be at least 1, not 0"),
    ("training: {dropout: 1.5}", "training: dropout must be in [0, 1), not 1.5"),
    ("matching: {beta: 60}", "matching: beta must be a whole number of head chromosomes 1..45"),
    ("matching: {gamma: -1}", "matching: gamma must be in (0, 10]"),
    ("training: {init_from: {pki3: bioimlab, bioimlab: pki3}}", "init_from has a cycle"),
    ("data: {val_fold: [5, 5]}", FOLDS + "[5, 5]"),
    ("data: {val_fold: [0, 1]}", FOLDS + "[0, 1]"),
    ("data: {val_fold: [0, 5, 1]}", FOLDS + "[0, 5, 1]"),
    ("data: {val_fold: [0, 5]}\ntraining: {init_from: {bioimlab: pki3}}",
     "val_fold with init_from naming a data set (bioimlab) would retrain that source on the fold too"),
    ("data: {val_fold: 3}", "data: val_fold must be a list (or null), not 3"),
    ("data: 3", "data must be a mapping of settings, not 3"),
    ("canvas: 64", "unknown setting 'canvas'"),                         # a setting outside its section
    ("training: {canvas: 64}", "training: unknown setting 'canvas'"),  # ... or in another one
    ("lr_by_dataset: {bioimlab: 0.02}", "unknown setting 'lr_by_dataset'"),
])
def test_bad_settings_stop_before_anything_is_written(tmp_path, capsys, text, words):
    cfg_path = _yaml(tmp_path, text)
    rc = cli.main(["train", "--config", str(cfg_path), "--dataset", "synthetic", "--model", MODEL])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and str(cfg_path) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()                   # no run directory, no done.json


def test_a_run_is_never_finished_without_best_pt(trained, tmp_path, capsys):
    cfg, run = _copy(trained, tmp_path)
    (run / "done.json").write_text(json.dumps({"config_digest": cfg.run_digest("synthetic", MODEL)}))
    (run / "best.pt").unlink()
    assert not Run(run).is_done(cfg, "synthetic", MODEL)     # done.json alone is not a finished run
    (run / "done.json").unlink()
    # last.pt says every epoch ran, best.pt is gone: train() refuses to write done.json
    with pytest.raises(CheckpointError, match="without writing best.pt; done.json not written"):
        train(cfg, "synthetic", MODEL, progress=False)
    assert not (run / "done.json").exists() and not (run / "best.pt").exists()
    # a Config edited in code is checked too
    cfg.training.epochs = {"default": 0}
    with pytest.raises(config.ConfigError, match="training: epochs must be a mapping of run keys"):
        train(cfg, "synthetic", MODEL, progress=False)


def test_a_stale_last_checkpoint_of_a_changed_profile_is_refused_and_can_be_moved_aside(trained, tmp_path):
    """The profile changed (lr) while a last.pt of the old one sits in the run folder: training refuses to
    resume it, says how to keep it, and `chromo runs move` then lets the new profile train afresh."""
    cfg, run = _copy(trained, tmp_path, lr={"default": 0.01})
    before = _files(run)
    with pytest.raises(CheckpointError, match=r"written by another config .*chromo runs move") as e:
        train(cfg, "synthetic", MODEL, progress=False)
    assert str(run / "last.pt") in str(e.value)
    # nothing written or removed (the lock file stays)
    assert [f for f in _files(run) if f != ".lock"] == before
    assert cli.main(["runs", "move", str(run), str(tmp_path / "old-run"), "--root",
                     str(tmp_path / "runs")]) == 0
    assert not run.exists() and (tmp_path / "old-run" / "last.pt").exists()


# --- a folder as --manifest-out, a write that fails -------------------------------------------------------
def test_manifest_out_pointing_at_a_folder(tmp_path, capsys):
    rc = cli.main(["data", "summary", "--config", "smoke", "--dataset", "synthetic", "--manifest-out",
                   str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and f"--manifest-out {tmp_path}: is a folder; give a file name" in err
    assert _files(tmp_path) == []


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_disk_full_or_read_only_names_the_target_not_the_temporary(tmp_path, capsys, monkeypatch, where):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def read_only(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), src, dst)

    monkeypatch.setattr(io.os, where, full if where == "fsync" else read_only)
    out = tmp_path / "m.csv"
    rc = cli.main(["data", "summary", "--config", "smoke", "--dataset", "synthetic", "--manifest-out",
                   str(out)])
    err = capsys.readouterr().err
    msg = os.strerror(errno.ENOSPC if where == "fsync" else errno.EACCES)
    assert rc == 2 and err.strip() == f"chromo: error: {out}: {msg}"
    assert _files(tmp_path) == []                             # no target, no temporary file


# --- temporary files of a killed write --------------------------------------------------------------------
def test_stale_temporaries_are_removed_under_the_lock(trained, tmp_path, capsys):
    cfg, run = _copy(trained, tmp_path)
    (run / ".last.pt.ab12cd34.tmp").write_bytes(b"x" * 1000)      # a killed torch.save of last.pt
    (run / ".best.pt.zz_9yy00.tmp").write_bytes(b"x" * 1000)
    young = run / ".features_test_ki.npz.qq11ww22.tmp"              # maybe `chromo features` writing now
    young.write_bytes(b"x")
    old = run / ".features_val_ki.npz.qq11ww33.tmp"                  # a killed feature write, hours ago
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    other = [run / ".notes.tmp", run / "mine.tmp"]                   # not our pattern: never touched
    for p in other:
        p.write_text("keep")
    with pytest.raises(CheckpointError, match="without writing best.pt"):   # resume: nothing left to train
        (run / "best.pt").unlink()
        train(cfg, "synthetic", MODEL, progress=False)
    err = capsys.readouterr().err
    assert "removed 3 stale temporary files" in err
    left = {p.name for p in run.iterdir()}
    assert young.name in left and all(p.name in left for p in other)
    assert not {".last.pt.ab12cd34.tmp", ".best.pt.zz_9yy00.tmp", old.name} & left
    # without the lock nothing is removed: a second process holding it keeps its temporaries
    keep = run / ".last.pt.kk11kk11.tmp"
    keep.write_bytes(b"x")
    with Run(run).lock():
        with pytest.raises(CheckpointError, match="being trained by another process"):
            train(cfg, "synthetic", MODEL, progress=False)
    assert keep.exists()
