"""chromo.lab.experiments: the experiment files of configs/experiments/ (each loads, validates and trains in
its own folder; folds, seed repeats and scoring experiments are what they say; no profile file can change
one), the experiments the book names, and profile_fine_tuning: the profile's BioImLab fine-tuning among the
cross-validated experiments."""
import dataclasses
import functools
import shutil

import pytest
import yaml

from chromo import config
from chromo.lab import baselines
from chromo.book import recognition
from chromo.lab import experiments


def test_the_cpu_profile_fine_tunes_as_one_cross_validated_experiment():
    assert experiments.profile_fine_tuning(config.load("cpu")) == "bioimlab-cv-lr0.02"


def test_another_bioimlab_learning_rate_is_none_of_them():
    cfg = config.load("cpu", lr={"default": 0.05, "bioimlab": 0.3})
    assert experiments.profile_fine_tuning(cfg) is None


# --- the experiment files of configs/experiments ----------------------------------------------------------
NAMES = experiments.names()
FOLDER = config.project_root() / experiments.FOLDER
_load = functools.lru_cache(maxsize=None)(experiments.load)     # read-only uses; fresh loads where it matters


def _all():
    return [_load(n) for n in NAMES]


def _without(cfg, *keys) -> dict:
    """cfg.to_dict() less some top-level keys (seed, runs_dir: what a repeat or a fold changes by design)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in keys}


@pytest.mark.parametrize("name", NAMES)
def test_every_experiment_file_loads_and_validates_with_its_own_runs_folder(name):
    e = experiments.load(name)
    assert e.name == name and e.dataset in config.DATASETS and e.recipe
    assert config.validate(e.cfg) is e.cfg
    assert e.cfg.runs_dir == f"runs/experiments/{name}"
    assert e.cfg.run_dir(e.dataset, e.model) == config.project_root() / "runs" / "experiments" / name / \
        e.cfg.profile / e.dataset / e.model


def test_a_scoring_experiment_names_an_existing_experiment_that_trains_its_run():
    scoring = [e for e in _all() if e.scores]
    assert scoring
    for e in scoring:
        assert e.scores in NAMES and e.scores != e.name, e.name
        assert not _load(e.scores).scores, e.name        # the run it scores is trained by its source


def test_a_folds_experiment_gives_one_run_per_fold_in_its_own_folder():
    folded = [e for e in _all() if e.folds]
    assert folded
    for e in folded:
        runs = e.configs()
        assert [fold for fold, _ in runs] == list(range(1, e.folds + 1)), e.name
        for fold, cfg in runs:
            assert cfg.data.val_fold == [fold - 1, e.folds], e.name
            assert cfg.runs_dir == f"runs/experiments/{e.name}/fold-{fold}", e.name
            config.validate(cfg)
            plain = _without(cfg, "runs_dir")
            plain["data"]["val_fold"] = None
            assert plain == _without(e.cfg, "runs_dir"), e.name         # only the fold and its folder change
        assert len({cfg.run_digest(e.dataset, e.model) for _, cfg in runs}) == e.folds
        assert e.cfg.data.val_fold is None                  # the experiment's own settings untouched
    assert [fold for fold, _ in next(e for e in _all() if not e.folds).configs()] == [None]


def test_seed_repeats_of_a_recipe_differ_only_in_the_seed():
    by_recipe = {}
    for e in _all():
        by_recipe.setdefault((e.dataset, e.recipe), []).append(e)
    repeats = {k: es for k, es in by_recipe.items() if len(es) > 1}
    assert ("pki3", "cpu profile") in repeats and ("bioimlab", "64 px canvas") in repeats
    for key, es in repeats.items():
        assert len({e.cfg.seed for e in es}) == len(es), key
        assert len({(e.model, e.scores, e.folds) for e in es}) == 1, key
        first = _without(es[0].cfg, "seed", "runs_dir")
        assert all(_without(e.cfg, "seed", "runs_dir") == first for e in es), key


def test_every_base_is_a_frozen_file_of_the_experiments_folder():
    """An experiment's settings never come from configs/cpu.yaml (or any profile): each experiment's base and
    each base's own base is a file of configs/experiments/base/."""
    files = sorted(FOLDER.glob("*.yaml")) + sorted((FOLDER / "base").glob("*.yaml"))
    for path in files:
        base = yaml.safe_load(path.read_text()).get("base")
        if path.parent.name == "base" and base is None:
            continue
        assert isinstance(base, str) and base.endswith(".yaml"), path.name
        found = (path.parent / base).resolve()
        assert found.is_file() and found.parent == (FOLDER / "base").resolve(), path.name
        assert "cpu.yaml" not in path.read_text(), path.name


def test_changing_the_cpu_profile_changes_no_experiment(tmp_path, monkeypatch):
    before = {n: dataclasses.asdict(experiments.load(n)) for n in NAMES}
    shutil.copytree(config.project_root() / "configs", tmp_path / "configs")
    (tmp_path / "configs" / "cpu.yaml").write_text(
        "base: smoke\nprofile: cpu\nseed: 5\ndata: {canvas: 32}\ntraining: {hidden: 8, lr: {default: 0.5}}\n")
    monkeypatch.setattr(config, "project_root", lambda: tmp_path)
    monkeypatch.setattr(experiments, "project_root", lambda: tmp_path)
    assert config.load("cpu").data.canvas == 32                      # the changed profile is the one read
    for n in NAMES:
        assert dataclasses.asdict(experiments.load(n)) == before[n], n


# --- the experiments the book names -----------------------------------------------------------------------
def test_the_experiments_the_book_names_exist_and_fit_their_use():
    named = {baselines.EQUAL_BUDGET, recognition.CV_BEFORE, *recognition.CV_LATER.values(),
             *recognition.CURVES,
             *recognition.BUDGET.values(), *recognition.OPTICS_PAIR, *sum(recognition.STRAIGHT_PAIRS, ())}
    assert named <= set(NAMES), sorted(named - set(NAMES))
    for n in recognition.CURVES:                             # validation curves: pki3 runs trained here
        e = _load(n)
        assert e.dataset == "pki3" and not e.scores and not e.folds, n
    for n in (recognition.CV_BEFORE, *recognition.CV_LATER.values()):
        e = _load(n)
        assert e.dataset == "bioimlab" and e.folds, n
    for straight, plain in recognition.STRAIGHT_PAIRS:
        a, b = _load(straight), _load(plain)
        assert a.dataset == b.dataset and a.cfg.data.straighten and not b.cfg.data.straighten, straight


def test_the_optics_pair_differs_only_in_the_optics_and_is_scored_factor_by_factor():
    a, b = (_load(n) for n in recognition.OPTICS_PAIR)
    da, db = _without(a.cfg, "runs_dir"), _without(b.cfg, "runs_dir")
    assert da["training"].pop("optics") > 0 and db["training"].pop("optics") == 0
    assert da == db and a.factors and b.factors


def test_a_run_directory_to_start_from_is_the_run_of_a_pki3_experiment_that_trains_it():
    runs = {e.cfg.run_dir("pki3", e.model): e for e in _all() if e.dataset == "pki3" and not e.scores}
    for e in _all():
        _, path = e.cfg.source_run(e.dataset)
        assert path is None or path in runs, f"{e.name}: starts from {path}, the run of no pki3 experiment"
