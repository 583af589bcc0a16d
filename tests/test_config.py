"""Config.run_digest: what identifies a training run. A finished run is reused only while its digest
matches (train.run_is_done / Run.is_done), so a training setting left out of it reuses a stale model, and
an analysis setting put into it retrains for nothing."""
import dataclasses

import pytest

from chromo import config

RUN = ("pki3", "eresnet-u1c0")

# Settings that change the trained model: a different value must give another digest. Each value differs
# from the smoke profile's (checked below).
TRAINING = {
    "seed": 1, "canvas": 96, "lr": 0.01, "epochs": {"default": 3}, "batch_size": 32, "backbone": "resnet34",
    "hidden": 64, "flip": False, "vflip": False, "orient": False, "tta": False, "label_smoothing": 0.0,
    "alpha": 0.25, "alpha_warmup_epochs": 0, "weight_decay": 1e-4, "momentum": 0.8, "center_lr": 0.3,
    "scale_mode": "per_image", "scale_quantile": 0.99, "max_cells": {"train": 8, "val": 6, "test": 6},
    "split_fractions": [0.7, 0.2, 0.1], "bioimlab_test_cells": 40, "rotate_deg": 5.0, "optics": 0.25, "dropout": 0.2,
    "patience": 3, "stem_maxpool": False, "bf16": False, "channels_last": False, "init_weights": "weights.pt",
    "straighten": False, "optics_blur_scaled": True, "val_fold": [1, 5],
}
# Settings of the matching and evaluation only (LFV scale, LRd head size, distance, assignment penalties,
# the low-confidence flag, the assignment's relative-size prior): the trained model is the same.
ANALYSIS = {"gamma": 1.5, "beta": 30, "distance": "euclid", "extra_penalty": 2.0, "missing_penalty": 6.0,
            "low_confidence": 0.3, "size_prior": {"pki3": 1.0}}
# Where things go and how many threads: the same model either way.
PLACES = {"runs_dir": "elsewhere/runs", "results_dir": "elsewhere/results", "cache_dir": "elsewhere/cache",
          "data_dir": "/some/other/data", "threads": 1, "profile": "renamed"}
# Judged per run rather than as a whole (tests below): the model list, the epochs of other runs, init_from,
# another data set's learning rate.
PER_RUN = {"models", "epochs", "init_from", "lr_by_dataset"}
# Settings of some models only (config.MODEL_ONLY): they change those models' runs, not the others'.
BASELINE_ONLY = {"adapt_baselines": True}


def _digest(**overrides):
    return config.load("smoke", **overrides).run_digest(*RUN)


def test_every_config_field_is_classified_here():
    """A new Config field must be placed in one of the groups above (and so tested)."""
    fields = {f.name for f in dataclasses.fields(config.Config)}
    assert fields == set(TRAINING) | set(ANALYSIS) | set(PLACES) | PER_RUN | set(BASELINE_ONLY)


def test_stable_across_loads_and_through_the_run_directorys_config_yaml(tmp_path):
    a, b = config.load("smoke"), config.load("smoke")
    assert a is not b and a.run_digest(*RUN) == b.run_digest(*RUN)
    config.save(a, tmp_path / "config.yaml")       # what a run directory keeps; check_run_identity re-reads it
    assert config.load(tmp_path / "config.yaml").run_digest(*RUN) == a.run_digest(*RUN)
    assert a.run_digest("bioimlab", "eresnet-u1c0") != a.run_digest(*RUN)
    assert a.run_digest("pki3", "alexnet") != a.run_digest(*RUN)


@pytest.mark.parametrize("key", sorted(TRAINING))
def test_a_training_setting_changes_the_digest(key):
    base = config.load("smoke")
    assert getattr(base, key) != TRAINING[key]
    pin = {"straighten": False} if key == "orient" else {}    # orient off needs straighten off
    if key == "val_fold":                                     # folds need a source given as a run directory
        pin = {"init_from": {"bioimlab": "runs/elsewhere"}}
    assert _digest(**pin, **{key: TRAINING[key]}) != _digest(**pin)


@pytest.mark.parametrize("key", sorted(ANALYSIS) + sorted(PLACES))
def test_an_analysis_or_output_setting_keeps_the_digest(key):
    value = {**ANALYSIS, **PLACES}[key]
    base = config.load("smoke")
    assert getattr(base, key) != value
    assert _digest(**{key: value}) == base.run_digest(*RUN)


def test_the_code_excludes_exactly_these_settings():
    # every group above except TRAINING, and nothing the TRAINING group holds
    assert config.NOT_TRAINING == set(ANALYSIS) | set(PLACES) | {"models", "epochs"}


def test_epochs_count_only_for_the_run_they_resolve_to():
    base = _digest()                                                     # smoke: epochs {default: 2}
    assert _digest(epochs={"default": 2, "bioimlab/eresnet-u1c0": 5}) == base   # another run's budget
    assert _digest(epochs={"default": 7, "pki3": 2}) == base                   # resolves to 2 again
    assert _digest(epochs={"default": 2, "pki3/eresnet-u1c0": 3}) != base      # this run's budget
    assert _digest(epochs={"default": 2, "eresnet-u1c0": 3}) != base
    assert _digest(models={"pki3": ["eresnet-u1c0", "alexnet"]}) == base       # the list of models to train


def test_a_run_started_from_another_follows_its_sources_digest():
    # smoke: bioimlab starts from the pki3 run (init_from {bioimlab: pki3}); pki3 starts from scratch.
    # (load() reads an override of None as "keep the file's value", so no init_from is written {})
    bio = ("bioimlab", "eresnet-u1c0")
    base = config.load("smoke")
    changed_source = config.load("smoke", epochs={"default": 2, "pki3/eresnet-u1c0": 3})
    assert changed_source.run_digest(*bio) != base.run_digest(*bio)       # a retrained source invalidates it
    assert config.load("smoke", init_from={}).run_digest(*bio) != base.run_digest(*bio)
    assert config.load("smoke", init_from={}).run_digest(*RUN) == base.run_digest(*RUN)   # pki3 unaffected
    changed_target = config.load("smoke", epochs={"default": 2, "bioimlab/eresnet-u1c0": 3})
    assert changed_target.run_digest(*RUN) == base.run_digest(*RUN)      # the dependency runs one way


def test_the_gpu_profile_is_the_papers_scale():
    """configs/gpu.yaml (issue 14): the paper's Table 4 variants, the three baselines and VGG16, a ResNet-50
    backbone and a canvas of at least 128 px; every setting valid."""
    cfg = config.load("gpu")
    config.validate(cfg)
    table4 = {f"eresnet-{v}" for v in ("u0c0", "u1c0", "u1c1", "u2c0", "u2c1", "u3c0", "u3c1", "u3c2")}
    assert set(cfg.models["pki3"]) == table4 | {"alexnet", "vgg16", "resnet50"}
    assert cfg.backbone == "resnet50" and cfg.canvas >= 128


def test_a_setting_added_later_at_its_off_value_keeps_the_digests_of_earlier_runs():
    """config.ADDED_LATER: runs trained before `optics` (or `adapt_baselines`) existed behave as their off
    value and must stay valid; so do they without lr_by_dataset (the digest holds the run's rate as `lr`)."""
    base = config.load("smoke", optics=0.0, straighten=False)
    assert base.optics == config.ADDED_LATER["optics"] == 0.0
    d = {k: v for k, v in base.to_dict().items()
         if k not in config.NOT_TRAINING and k not in ("optics", "adapt_baselines", "straighten", "optics_blur_scaled", "val_fold",
                                                         "lr_by_dataset")}
    d.update(epochs=base.epochs_for(RUN[1], RUN[0]), dataset=RUN[0], model=RUN[1],
             init_from=base.source_digest(*RUN))
    assert base.run_digest(*RUN) == config._sha(d)               # the digest as before the key existed
    assert _digest(optics=0.5) != base.run_digest(*RUN)
    assert _digest(orient=True, straighten=True) != _digest(orient=True, straighten=False)


def test_a_baseline_setting_changes_only_the_baselines_runs():
    """adapt_baselines rebuilds AlexNet and VGG16: their runs retrain, the EResNet and ResNet-50 runs stay."""
    base, adapted = config.load("smoke"), config.load("smoke", **BASELINE_ONLY)
    assert base.adapt_baselines is False and adapted.adapt_baselines is True
    for model in ("alexnet", "vgg16"):
        assert adapted.run_digest("pki3", model) != base.run_digest("pki3", model)
    for model in ("eresnet-u1c0", "resnet50"):
        assert adapted.run_digest("pki3", model) == base.run_digest("pki3", model)


def test_fractional_epochs_stop_part_way_and_whole_numbers_keep_their_digest():
    cfg = config.load("smoke", epochs={"default": 2.0, "alexnet": 0.5, "vgg16": 2.25})
    assert cfg.epochs_for("eresnet-u1c0", "pki3") == 2 and isinstance(cfg.epochs_for("eresnet-u1c0", "pki3"), int)
    assert cfg.epochs_for("alexnet", "pki3") == 0.5 and cfg.epochs_for("vgg16", "pki3") == 2.25
    assert cfg.run_digest(*RUN) == _digest()              # 2.0 is the smoke profile's 2: the same run
    assert _digest(epochs={"default": 2.5}) != _digest()


def test_a_data_sets_own_learning_rate_changes_only_its_runs():
    """lr_by_dataset: BioImLab's fine-tuning rate retrains the BioImLab runs only, and a run's digest is the
    same whether its rate comes from lr_by_dataset or from lr (the rate the run trains with)."""
    base = config.load("smoke")
    own = config.load("smoke", lr_by_dataset={"bioimlab": 0.02})
    assert own.lr_for("bioimlab") == 0.02 and own.lr_for("pki3") == base.lr == own.lr
    assert own.run_digest("pki3", "eresnet-u1c0") == base.run_digest("pki3", "eresnet-u1c0")
    assert own.run_digest("bioimlab", "eresnet-u1c0") != base.run_digest("bioimlab", "eresnet-u1c0")
    everywhere = config.load("smoke", lr=0.02)       # (its pki3 source would train at 0.02 too: start from scratch)
    own.init_from = everywhere.init_from = None
    assert own.run_digest("bioimlab", "eresnet-u1c0") == everywhere.run_digest("bioimlab", "eresnet-u1c0")
