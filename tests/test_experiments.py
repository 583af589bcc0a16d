"""chromo.experiments: each variant is the cpu profile with exactly its stated changes, trained in its own
folder (the cpu profile itself in the main job's), and the seed spread is computed from the cpu-profile
rows only (hand-computed)."""
import math

import pandas as pd
import pytest

from chromo import config, experiments
from chromo.config import NOT_TRAINING


@pytest.mark.parametrize("name", sorted(experiments.VARIANTS))
def test_a_variant_is_the_cpu_profile_with_its_changes_only(name):
    dataset, changes, _ = experiments.VARIANTS[name]
    cpu, cfg = config.load("cpu"), experiments.variant_config(name)
    differ = {k for k, v in cfg.to_dict().items() if v != cpu.to_dict()[k]}
    assert differ - {"runs_dir"} == {k for k, v in changes.items() if v != cpu.to_dict()[k]}
    if changes:      # its own folder, so a variant never overwrites the main job's run
        assert cfg.runs_dir == f"runs/experiments/{experiments._slug(name)}"
    else:
        assert cfg.runs_dir == cpu.runs_dir
    assert "runs_dir" in NOT_TRAINING


def test_slugs_are_unique_folders():
    slugs = [experiments._slug(n) for n in experiments.VARIANTS]
    assert len(set(slugs)) == len(slugs)


def test_variants_named_without_optics_switch_it_off_and_the_others_keep_the_profiles():
    cpu = config.load("cpu")
    assert cpu.optics > 0
    for name in experiments.VARIANTS:
        assert experiments.variant_config(name).optics == (0.0 if "no optics" in name else cpu.optics), name


def test_seed_spread_uses_the_cpu_profile_rows_only():
    exp = pd.DataFrame([
        {"variant": "pki3: cpu profile", "dataset": "pki3", "scored": "run", "val_ki_dcnn": 0.90, "val_ki_assign": 0.95},
        {"variant": "pki3: cpu profile, seed 1", "dataset": "pki3", "scored": "run", "val_ki_dcnn": 0.92,
         "val_ki_assign": 0.97},
        {"variant": "pki3: cpu profile, no flip averaging", "dataset": "pki3", "scored": "no-tta",
         "val_ki_dcnn": 0.50, "val_ki_assign": 0.50},
        {"variant": "pki3: no optics augmentation", "dataset": "pki3", "scored": "run", "val_ki_dcnn": 0.10,
         "val_ki_assign": 0.10},
    ])
    s = experiments.seed_spread(exp).set_index(["dataset", "method"])
    # two seeds, 0.90 and 0.92: mean 0.91, sample sd = |0.92 - 0.90| / sqrt(2) = 0.0141421
    assert s.loc[("pki3", "dcnn"), "seeds"] == 2
    assert s.loc[("pki3", "dcnn"), "mean"] == pytest.approx(0.91)
    assert s.loc[("pki3", "dcnn"), "sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert s.loc[("pki3", "assign"), "mean"] == pytest.approx(0.96)


def test_variant_run_is_none_where_the_variant_was_not_trained(tmp_path, monkeypatch):
    real = experiments.variant_config

    def elsewhere(name):
        cfg = real(name)
        cfg.runs_dir = str(tmp_path / "runs")
        return cfg

    monkeypatch.setattr(experiments, "variant_config", elsewhere)
    assert experiments.variant_run("pki3: no optics augmentation") is None
