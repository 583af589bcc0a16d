"""Training on the synthetic set at smoke size: determinism, resume after an interruption,
checkpoints, features, bad configuration."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from chromo import config
from chromo import device
from chromo.inference import extract_features
from chromo.run import CheckpointError, Run, load_checkpoint
from chromo.train import Interrupted, train


def _cfg(tmp_path, name="a", **kw):
    return config.load("smoke", runs_dir=str(tmp_path / name / "runs"),
                       results_dir=str(tmp_path / name / "res"),
                       cache_dir=str(config.project_root() / ".cache"),
                       max_cells={"train": 8, "val": 4, "test": 4}, hidden=32, **kw)


def _log(run):
    return pd.read_csv(run / "log.csv").drop(columns=["images_per_s", "epoch_s"])


@pytest.mark.slow
def test_same_seed_same_metrics_and_resume_after_interruption(tmp_path):
    a = train(_cfg(tmp_path, "a"), "synthetic", "eresnet-u1c0", progress=False).path
    b = train(_cfg(tmp_path, "b"), "synthetic", "eresnet-u1c0", progress=False).path
    pd.testing.assert_frame_equal(_log(a), _log(b))                       # deterministic on the CPU
    cfg_c = _cfg(tmp_path, "c")
    with pytest.raises(Interrupted):
        train(cfg_c, "synthetic", "eresnet-u1c0", progress=False, stop_after=1)   # "killed" after epoch 1
    assert not (cfg_c.run_dir("synthetic", "eresnet-u1c0") / "done.json").exists()
    c = train(cfg_c, "synthetic", "eresnet-u1c0", progress=False).path              # resumes from last.pt
    pd.testing.assert_frame_equal(_log(a), _log(c))
    wa, wc = load_checkpoint(a / "last.pt")["model"], load_checkpoint(c / "last.pt")["model"]
    assert all(torch.equal(wa[k], wc[k]) for k in wa)
    # a finished run is reused, not retrained
    mtime = (a / "best.pt").stat().st_mtime
    assert train(_cfg(tmp_path, "a"), "synthetic", "eresnet-u1c0", progress=False).path == a
    assert (a / "best.pt").stat().st_mtime == mtime
    # run directory contents
    assert {"config.yaml", "provenance.json", "log.csv", "best.pt", "last.pt",
            "done.json"} <= {p.name for p in a.iterdir()}
    prov = json.loads((a / "provenance.json").read_text())
    assert prov["git_commit"] and prov["versions"]["torch"] and prov["preprocessing"]["canvas"] == 64
    # features for the analyses
    files = extract_features(a, "test", progress=False)
    assert [f.name for f in files] == ["features_test_ki.npz", "features_test_mi.npz"]
    f = Run(a).features("test", "ki")
    assert f["features"].shape == (len(f["labels"]), 512) and f["logits"].shape[1] == 24
    assert len(np.unique(f["cells"])) == 4
    model, ck = Run(a).load_model(device())
    assert ck["model_config"]["name"] == "eresnet-u1c0"


def test_a_fractional_epoch_budget_stops_the_last_epoch_part_way(tmp_path):
    """epochs 1.5: one whole epoch, then half of the second; the cosine schedule ends at that step."""
    from chromo.data.loader import prepare
    cfg = _cfg(tmp_path, "f", epochs={"default": 1.5}, alpha_warmup_epochs=0)
    run = train(cfg, "synthetic", "eresnet-u1c0", progress=False)
    n_train = len(prepare(cfg, "synthetic", progress=False).split("train"))
    steps = -(-n_train // cfg.training.batch_size)
    st = load_checkpoint(run.last)["state"]
    assert st["step"] == round(1.5 * steps) and st["epoch"] == 2
    log = pd.read_csv(run.path / "log.csv")
    assert list(log["epoch"]) == [1, 2] and run.done()["epochs_run"] == 2
    # warm-up takes at most half of a short budget, so the cosine decay runs to its end (lr near 0)
    assert log["lr"].iloc[-1] < 0.1 * cfg.lr_for("eresnet-u1c0", "synthetic")


def test_corrupt_and_missing_checkpoints(tmp_path):
    p = tmp_path / "best.pt"
    p.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_checkpoint_round_trip(tmp_path):
    from chromo.io import atomic_torch_save

    sd = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"epoch": 3}}
    atomic_torch_save(tmp_path / "x.pt", sd)
    back = load_checkpoint(tmp_path / "x.pt")
    assert torch.equal(back["w"], sd["w"]) and back["meta"] == {"epoch": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]        # no temporary file left behind


def test_bad_config(tmp_path):
    with pytest.raises(config.ConfigError, match="unknown setting 'not_a_key' in keyword arguments"):
        config.load("smoke", not_a_key=1)
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("canvas: [1, 2\n")
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.load(bad)
    with pytest.raises(ValueError, match="unknown model"):
        train(_cfg(tmp_path), "synthetic", "resnet1000", progress=False)
    with pytest.raises(ValueError, match="too small for alexnet"):
        train(_cfg(tmp_path, canvas=32), "synthetic", "alexnet", progress=False)
