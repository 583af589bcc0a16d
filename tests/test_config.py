"""Config.run_digest: what identifies a training run. A finished run is reused only while its digest
matches (Run.is_done), so a training setting left out of it reuses a stale model, and a matching setting put
into it retrains for nothing. The identity is the hash of the run's resolved data and training settings
under config.SCHEMA, with no exception for any setting."""
import dataclasses

import pytest

from chromo import BASELINES, TABLE4_VARIANTS, config

RUN = ("pki3", "eresnet-u1c0")

# A value of every data and training setting that differs from the smoke profile's.
CHANGED = {
    "seed": 1, "canvas": 96, "scale_mode": "per_image", "scale_quantile": 0.99,
    "max_cells": {"train": 8, "val": 6, "test": 6}, "split_fractions": [0.7, 0.2, 0.1],
    "bioimlab_test_cells": 40,
    "val_fold": [1, 5], "orient": False, "straighten": False,
    "backbone": "resnet34", "stem_maxpool": False, "hidden": 64, "dropout": 0.2, "batch_size": 32,
    "momentum": 0.8, "weight_decay": 1e-4, "alpha": 0.25, "alpha_warmup_epochs": 0, "center_lr": 0.3,
    "patience": 3, "label_smoothing": 0.0, "flip": False, "vflip": False, "rotate_deg": 5.0, "optics": 0.25,
    "optics_blur_scaled": True, "tta": False, "bf16": False, "channels_last": False,
    "init_weights": "weights.pt",
    "epochs": {"default": 3}, "lr": {"default": 0.01},
}
# Settings of the matching (LFV scale, LRd head size, distance, assignment penalties and prior, the
# review queue of `chromo classify`), and where things go and how many threads: the same trained model either
# way.
SAME_MODEL = {"gamma": 1.5, "beta": 30, "distance": "euclid", "extra_penalty": 2.0, "missing_penalty": 6.0,
              "review_k": 3, "set_aside": 1.0, "size_prior": {"pki3": 1.0}, "runs_dir": "elsewhere/runs",
              "results_dir": "elsewhere/results", "cache_dir": "elsewhere/cache",
              "data_dir": "/some/other/data",
              "threads": 1, "profile": "renamed"}
# Resolved per run (tests below): the model list, init_from, the baselines' adaptation.
PER_RUN = {"models", "init_from", "adapt_baselines"}


def _digest(**overrides):
    return config.load("smoke", **overrides).run_digest(*RUN)


def _value(cfg, key):
    return next(getattr(g, key) for g in (cfg, cfg.data, cfg.training, cfg.matching) if hasattr(g, key))


def test_every_setting_is_classified_here():
    """A new setting must be placed in one of the groups above (and so tested)."""
    names = set().union(*(config._names(c) for c in (config.Config, *config.GROUPS.values())))
    assert names == set(CHANGED) | set(SAME_MODEL) | PER_RUN


def test_stable_across_loads_and_through_the_run_directorys_config_yaml(tmp_path):
    a, b = config.load("smoke"), config.load("smoke")
    assert a is not b and a.run_digest(*RUN) == b.run_digest(*RUN)
    # what a run directory keeps; Run.check_identity re-reads it
    config.save(a, tmp_path / "config.yaml")
    assert config.load(tmp_path / "config.yaml").run_digest(*RUN) == a.run_digest(*RUN)
    assert a.run_digest("bioimlab", "eresnet-u1c0") != a.run_digest(*RUN)
    assert a.run_digest("pki3", "alexnet") != a.run_digest(*RUN)


@pytest.mark.parametrize("key", sorted(CHANGED))
def test_a_data_or_training_setting_changes_the_digest(key):
    assert _value(config.load("smoke"), key) != CHANGED[key]
    pin = {"straighten": False} if key == "orient" else {}    # orient off needs straighten off
    if key == "val_fold":                                     # folds need a source given as a run directory
        pin = {"init_from": {"bioimlab": "runs/elsewhere"}}
    assert _digest(**pin, **{key: CHANGED[key]}) != _digest(**pin)


@pytest.mark.parametrize("key", sorted(SAME_MODEL))
def test_a_matching_or_output_setting_keeps_the_digest(key):
    assert _value(config.load("smoke"), key) != SAME_MODEL[key]
    assert _digest(**{key: SAME_MODEL[key]}) == _digest()


def test_the_schema_version_is_part_of_every_identity(monkeypatch):
    before = _digest()
    monkeypatch.setattr(config, "SCHEMA", config.SCHEMA + 1)
    assert _digest() != before


def test_epochs_and_rate_count_only_for_the_run_they_resolve_to():
    base = _digest()                                                     # smoke: epochs {default: 2}
    assert _digest(epochs={"default": 2, "bioimlab/eresnet-u1c0": 5}) == base   # another run's budget
    assert _digest(epochs={"default": 7, "pki3": 2}) == base                   # resolves to 2 again
    assert _digest(epochs={"default": 2.0}) == base                            # 2.0 is 2
    assert _digest(epochs={"default": 2, "pki3/eresnet-u1c0": 3}) != base      # this run's budget
    assert _digest(epochs={"default": 2, "eresnet-u1c0": 3}) != base
    assert _digest(lr={"default": 0.05, "bioimlab": 0.02}) == base             # another data set's rate
    assert _digest(lr={"default": 0.05, "pki3": 0.02}) != base
    assert _digest(lr={"default": 0.05, "alexnet": 0.01}) == base              # another model's rate
    assert _digest(models={"pki3": ["eresnet-u1c0", "alexnet"]}) == base       # the list of models to train


def test_per_run_values_resolve_by_the_most_specific_key():
    cfg = config.load("smoke", epochs={"default": 2, "alexnet": 0.5, "pki3": 4, "pki3/vgg16": 2.25},
                      lr={"default": 0.05, "bioimlab": 0.02, "bioimlab/alexnet": 0.01})
    assert cfg.epochs_for("eresnet-u1c0", "pki3") == 4 and isinstance(cfg.epochs_for("eresnet-u1c0", "pki3"),
                                                                      int)
    assert cfg.epochs_for("alexnet", "pki3") == 0.5 and cfg.epochs_for("vgg16", "pki3") == 2.25
    assert cfg.epochs_for("eresnet-u1c0", "bioimlab") == 2
    assert cfg.lr_for("eresnet-u1c0", "bioimlab") == 0.02 and cfg.lr_for("alexnet", "bioimlab") == 0.01
    assert cfg.lr_for("alexnet", "pki3") == 0.05


def test_a_run_started_from_another_follows_its_sources_digest():
    # smoke: bioimlab starts from the pki3 run (init_from {bioimlab: pki3}); pki3 starts from scratch
    bio = ("bioimlab", "eresnet-u1c0")
    base = config.load("smoke")
    changed_source = config.load("smoke", epochs={"default": 2, "pki3/eresnet-u1c0": 3})
    assert changed_source.run_digest(*bio) != base.run_digest(*bio)       # a retrained source invalidates it
    assert config.load("smoke", init_from={}).run_digest(*bio) != base.run_digest(*bio)
    assert config.load("smoke", init_from={}).run_digest(*RUN) == base.run_digest(*RUN)   # pki3 unaffected
    changed_target = config.load("smoke", epochs={"default": 2, "bioimlab/eresnet-u1c0": 3})
    assert changed_target.run_digest(*RUN) == base.run_digest(*RUN)      # the dependency runs one way


def test_a_source_given_as_a_run_directory_counts_by_its_finished_digest(tmp_path):
    src = tmp_path / "src"
    cfg = config.load("smoke", init_from={"bioimlab": str(src)})
    unfinished = cfg.run_digest("bioimlab", "eresnet-u1c0")
    src.mkdir()
    (src / "done.json").write_text('{"config_digest": "abc"}')
    finished = cfg.run_digest("bioimlab", "eresnet-u1c0")
    (src / "done.json").write_text('{"config_digest": "def"}')                  # the source retrained
    assert len({unfinished, finished, cfg.run_digest("bioimlab", "eresnet-u1c0")}) == 3


def test_the_baselines_adaptation_is_resolved_per_model():
    """adapt_baselines rebuilds AlexNet and VGG16: their runs retrain, the EResNet and ResNet-50 runs stay."""
    base, adapted = config.load("smoke"), config.load("smoke", adapt_baselines=True)
    for model in config.ADAPTED:
        assert adapted.run_digest("pki3", model) != base.run_digest("pki3", model)
    for model in ("eresnet-u1c0", "resnet50"):
        assert adapted.run_digest("pki3", model) == base.run_digest("pki3", model)


def test_the_gpu_profile_is_the_papers_scale():
    """configs/gpu.yaml: the paper's Table 4 variants, the three baselines and VGG16, a ResNet-50 backbone
    and a canvas of at least 128 px; every setting valid."""
    cfg = config.validate(config.load("gpu"))
    assert set(cfg.training.models["pki3"]) == {f"eresnet-{v}" for v in TABLE4_VARIANTS} | set(BASELINES)
    assert cfg.training.backbone == "resnet50" and cfg.data.canvas >= 128


def test_a_base_is_merged_group_by_group_and_found_beside_the_file(tmp_path):
    (tmp_path / "below.yaml").write_text("base: smoke\ndata: {canvas: 96}\n"
                                         "training: {hidden: 32, epochs: {default: 5}}\n")
    (tmp_path / "above.yaml").write_text("base: below.yaml\nseed: 3\ntraining: {hidden: 16}\n")
    cfg = config.load(tmp_path / "above.yaml")
    smoke = config.load("smoke")
    assert (cfg.seed, cfg.data.canvas, cfg.training.hidden, cfg.epochs_for("x", "pki3")) == (3, 96, 16, 5)
    assert cfg.data.orient == smoke.data.orient and cfg.training.optics == smoke.training.optics


def test_every_group_holds_its_own_settings_only():
    for name, cls in config.GROUPS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields and not fields & set(config.GROUPS), name
    assert not config._names(config.Data) & config._names(config.Training)
