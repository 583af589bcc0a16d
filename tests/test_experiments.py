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


def _row(variant, dcnn, assign, scored="run"):
    return {"variant": variant, "dataset": "pki3", "scored": scored, "val_ki_dcnn": dcnn, "val_ki_assign": assign}


def test_seed_spread_groups_the_seed_repeats_of_each_recipe_only():
    exp = pd.DataFrame([
        _row("pki3: cpu profile", 0.94, 0.97),
        _row("pki3: 64 px canvas, 8 epochs", 0.90, 0.95),
        _row("pki3: 64 px canvas, seed 1", 0.92, 0.97),
        _row("pki3: cpu profile, no flip averaging", 0.50, 0.50, scored="no-tta"),
        _row("pki3: 64 px canvas, no optics augmentation", 0.10, 0.10),
        # other budgets or canvases of a recipe are not seed repeats, though their names say "cpu profile"
        _row(experiments.EQUAL_BUDGET, 0.70, 0.80),
        _row(experiments.PLAIN_SHORT, 0.71, 0.81),
        _row(experiments.LONGER, 0.99, 0.99),
    ])
    s = experiments.seed_spread(exp).set_index(["recipe", "dataset", "method"])
    square = ("64 px canvas", "pki3", "dcnn")
    # two seeds, 0.90 and 0.92: mean 0.91, sample sd = |0.92 - 0.90| / sqrt(2) = 0.0141421
    assert s.loc[square, "seeds"] == 2
    assert s.loc[square, "mean"] == pytest.approx(0.91)
    assert s.loc[square, "sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert s.loc[("64 px canvas", "pki3", "assign"), "mean"] == pytest.approx(0.96)
    assert s.loc[("cpu profile", "pki3", "dcnn"), "seeds"] == 1
    # the profile has one seed: the 64 px recipe's spread stands in, and says so
    y = experiments.yardstick(exp)
    assert y.loc[("pki3", "dcnn"), "recipe"] == "64 px canvas"
    assert experiments.spread_text(y, "pki3", "dcnn") == "0.0141 (2 seeds, 64 px canvas recipe)"
    assert experiments.spread_text(y, "bioimlab", "dcnn") == "—"
    # with two seeds of its own, the profile's spread is used: 0.94 and 0.96, sd 0.0141421
    own = pd.concat([exp, pd.DataFrame([_row("pki3: cpu profile, seed 1", 0.96, 0.97)])], ignore_index=True)
    y = experiments.yardstick(own)
    assert y.loc[("pki3", "dcnn"), "recipe"] == "cpu profile"
    assert experiments.spread_text(y, "pki3", "dcnn") == "0.0141 (2 seeds)"


def test_the_spread_of_the_simulated_mi_is_its_own():
    """pki3 rows carry both query styles: the MI spread comes from the MI columns, never from KI's."""
    rows = [{**_row(f"pki3: cpu profile{s}", ki, 0.97), "val_mi_dcnn": mi, "val_mi_assign": 0.96}
            for s, ki, mi in (("", 0.94, 0.90), (", seed 1", 0.96, 0.93))]
    exp = pd.DataFrame(rows)
    ki, mi = experiments.yardstick(exp), experiments.yardstick(exp, "mi")
    assert ki.loc[("pki3", "dcnn"), "sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert mi.loc[("pki3", "dcnn"), "sd"] == pytest.approx(0.03 / math.sqrt(2))
    assert mi.loc[("pki3", "assign"), "sd"] == pytest.approx(0.0)
    assert experiments.seed_spread(exp, "mi")["query"].unique().tolist() == ["mi"]
    assert experiments.seed_spread(exp.drop(columns=["val_mi_dcnn", "val_mi_assign"]), "mi").empty


def test_seed_recipes_are_the_profile_and_its_predecessors_with_their_own_transfer_sources():
    recipe = experiments.seed_recipe
    assert recipe("pki3: cpu profile") == recipe("pki3: cpu profile, seed 2") == "cpu profile"
    assert recipe("bioimlab: cpu profile, seed 1") == "cpu profile"        # from the profile's pki3 run
    assert recipe(experiments.PKI3_SEVEN) == recipe("pki3: 7 epochs, seed 2") == "7 epochs"
    assert recipe(experiments.BIO_SEVEN) == recipe(f"{experiments.BIO_SEVEN}, seed 1") == "7 epochs"
    assert recipe("pki3: not straightened") == recipe("pki3: not straightened, seed 1") == "not straightened"
    assert recipe(experiments.BIO_PLAIN) == recipe("bioimlab: not straightened, seed 2") == "not straightened"
    # straightened fine-tuning from the unstraightened pki3 run is neither recipe
    assert recipe(experiments.STRAIGHT_FROM_PLAIN) is None
    assert recipe("bioimlab: 64 px canvas, seed 1") == recipe("pki3: 64 px canvas, 8 epochs") == "64 px canvas"
    for other in ("pki3: cpu profile, no flip averaging", "pki3: 7 epochs, no flip averaging", experiments.PKI3_BLUR,
                  experiments.BIO_BLUR, experiments.EQUAL_BUDGET, experiments.PLAIN_SHORT, experiments.LONGER,
                  "bioimlab: 64 px canvas, no optics augmentation, seed 1", "no such variant"):
        assert recipe(other) is None, other


def test_the_64_px_variants_keep_the_64_px_square_and_its_epochs():
    for name, (dataset, changes, _) in experiments.VARIANTS.items():
        cfg = experiments.variant_config(name)
        if "64 px" in name:
            assert cfg.canvas == 64, name
        else:
            assert cfg.canvas == config.load("cpu").canvas, name
    assert experiments.variant_config("pki3: 64 px canvas, 8 epochs").epochs_for("eresnet-u1c0", "pki3") == 8
    assert experiments.variant_config("bioimlab: 64 px canvas, seed 1").epochs_for("eresnet-u1c0", "bioimlab") == 20


def test_variant_run_is_none_where_the_variant_was_not_trained(tmp_path, monkeypatch):
    real = experiments.variant_config

    def elsewhere(name):
        cfg = real(name)
        cfg.runs_dir = str(tmp_path / "runs")
        return cfg

    monkeypatch.setattr(experiments, "variant_config", elsewhere)
    assert experiments.variant_run("pki3: 64 px canvas, no optics augmentation") is None


def test_straight_table_pairs_each_straightened_run_with_its_plain_recipe():
    rows = [{**_row("pki3: not straightened", 0.94, 0.97), "val_mi_dcnn": 0.90, "val_mi_assign": 0.95},
            {**_row("pki3: not straightened, seed 1", 0.96, 0.97), "val_mi_dcnn": 0.92, "val_mi_assign": 0.95},
            {**_row(experiments.PKI3_SEVEN, 0.95, 0.98), "val_mi_dcnn": 0.93, "val_mi_assign": 0.96},
            # the profile's own seeds never stand in for the spread of the recipe without straightening
            {**_row("pki3: cpu profile, seed 1", 0.85, 0.98), "val_mi_dcnn": 0.73, "val_mi_assign": 0.96}]
    t = experiments.straight_table(pd.DataFrame(rows)).set_index(["query", "method"])
    assert len(t) == 4                                   # KI and MI, DCNN and assignment; BioImLab pairs absent
    assert t.loc[("KI", "dcnn"), "difference"] == pytest.approx(0.01)
    assert t.loc[("MI", "dcnn"), "difference"] == pytest.approx(0.03)
    # 0.90 and 0.92 over the unstraightened seeds: sd 0.02 / sqrt(2)
    assert t.loc[("MI", "dcnn"), "seed sd (without)"] == pytest.approx(0.02 / math.sqrt(2))
    assert t.loc[("KI", "assign"), "seed sd (without)"] == pytest.approx(0.0)
    assert experiments.straight_table(pd.DataFrame(rows[:2])).empty


def test_the_profile_straightens_and_every_earlier_recipe_is_pinned_without_it():
    assert config.load("cpu").straighten
    for name in experiments.VARIANTS:
        earlier = "not straightened" in name or "64 px" in name
        assert experiments.variant_config(name).straighten is not earlier, name


def test_the_scaled_blur_variants_change_only_the_blur_and_the_bioimlab_one_starts_from_its_own_pki3_run():
    cpu = config.load("cpu")
    assert cpu.optics_blur_scaled is False
    for name in experiments.VARIANTS:
        assert experiments.variant_config(name).optics_blur_scaled == ("blur scaled" in name), name
    bio = experiments.variant_config(experiments.BIO_BLUR)
    assert bio.init_from == {"bioimlab": experiments.PKI3_BLUR_RUN}
    src = experiments.variant_config(experiments.PKI3_BLUR)
    assert experiments.PKI3_BLUR_RUN == f"{src.runs_dir}/cpu/pki3/eresnet-u1c0"     # the folder it trains in
    assert experiments.seed_recipe(experiments.PKI3_BLUR) is None and experiments.seed_recipe(experiments.BIO_BLUR) is None


class _FakeRun:
    def __init__(self, log):
        self._log = log

    def log(self):
        return self._log


def test_curves_come_from_the_runs_here_and_a_variant_trained_elsewhere_keeps_its_recorded_curve(monkeypatch):
    here, elsewhere = experiments.PKI3_BLUR, experiments.SQUARE_RUN
    log = pd.DataFrame({"epoch": [1, 2], "loss": [3.0, 2.0], "val_acc": [0.5, 0.75], "epoch_s": [60.0, 61.5]})
    monkeypatch.setattr(experiments, "variant_run", lambda name: _FakeRun(log) if name == here else None)
    recorded = pd.DataFrame([[elsewhere, 1, 50.0, 0.4], [here, 1, 1.0, 0.1], [here, 2, 1.0, 0.2], [here, 3, 1.0, 0.3],
                             ["pki3: a variant since renamed", 1, 9.0, 0.9]], columns=experiments.CURVE_COLUMNS)
    out = experiments.with_curves(recorded, [here, elsewhere, "pki3: cpu profile, no flip averaging"])
    assert list(out.columns) == experiments.CURVE_COLUMNS
    mine = out[out["variant"] == here]
    assert mine["val_acc"].tolist() == [0.5, 0.75] and mine["epoch_s"].tolist() == [60.0, 61.5]   # the run's log
    assert out[out["variant"] == elsewhere]["val_acc"].tolist() == [0.4]                        # kept
    assert out["variant"].tolist() == [here, here, elsewhere]                                   # VARIANTS order
    assert len(experiments.with_curves(experiments.load_curves(_results_in_nowhere()), [elsewhere])) == 0


def _results_in_nowhere():
    cfg = config.load("cpu")
    cfg.results_dir = "/nonexistent/results"
    return cfg


def test_the_curves_figure_names_only_variants_of_the_experiments_table():
    assert set(experiments.CURVES) <= set(experiments.VARIANTS)
    assert all(experiments.VARIANTS[n][0] == "pki3" and experiments.VARIANTS[n][2] == "run" for n in experiments.CURVES)


def test_hardware_is_filled_only_where_empty_and_only_from_a_run_here(monkeypatch, tmp_path):
    class Here:
        def provenance(self):
            return {"hardware": "CPU only: 2 cores, here"}

    here, elsewhere, recorded = experiments.PKI3_BLUR, experiments.SQUARE_RUN, experiments.LONGER
    monkeypatch.setattr(experiments, "variant_run", lambda name: Here() if name in (here, recorded) else None)
    pd.DataFrame({"variant": [here, elsewhere, recorded], "hardware": ["", "", "CPU only: 2 cores, there"]}).to_csv(
        tmp_path / "e.csv", index=False)                                   # empty cells read back as missing
    exp = experiments.with_hardware(pd.read_csv(tmp_path / "e.csv"))
    assert exp["hardware"].tolist()[0] == "CPU only: 2 cores, here"
    assert pd.isna(exp["hardware"].tolist()[1])                          # not recorded: stays empty
    assert exp["hardware"].tolist()[2] == "CPU only: 2 cores, there"     # never overwritten
    no_column = experiments.with_hardware(pd.DataFrame({"variant": [here, elsewhere]}))
    assert no_column["hardware"].tolist()[0] == "CPU only: 2 cores, here" and pd.isna(no_column["hardware"].tolist()[1])


def test_the_7_epoch_recipe_is_the_profile_with_7_pki3_epochs_and_its_bioimlab_runs_start_from_its_pki3_run():
    cpu = config.load("cpu")
    assert cpu.epochs_for("eresnet-u1c0", "pki3") == 14
    seven = experiments.variant_config(experiments.PKI3_SEVEN)
    assert seven.epochs_for("eresnet-u1c0", "pki3") == 7
    assert seven.epochs_for("eresnet-u1c0", "bioimlab") == cpu.epochs_for("eresnet-u1c0", "bioimlab") == 20
    assert experiments.PKI3_SEVEN_RUN == f"{seven.runs_dir}/cpu/pki3/eresnet-u1c0"
    for name in experiments.VARIANTS:     # every earlier recipe keeps 7 pki3 epochs (or its own)
        if any(w in name for w in ("7 epochs", "7-epoch", "not straightened", "blur scaled")):
            cfg, (dataset, _, how) = experiments.variant_config(name), experiments.VARIANTS[name]
            if dataset == "pki3" or how == "pki3-model":          # the pki3 run it trains
                assert cfg.epochs_for("eresnet-u1c0", "pki3") in (7, 2.1), name
            elif "7-epoch" in name:                               # fine-tuned from the 7-epoch pki3 run
                assert cfg.init_from == {"bioimlab": experiments.PKI3_SEVEN_RUN}, name


def test_targets_table_reads_the_run_and_says_met_or_not():
    """Each target beside the run's number: met at or above it, missed below, None where not measured."""
    from chromo.experiments import TARGETS, targets_table

    rec = lambda d, q, m, a: {"dataset": d, "query": q, "method": m, "model": "eresnet-u1c0",  # noqa: E731
                              "distance": None, "accuracy_mean_cell": a}
    metrics = {"records": [rec("pki3", "ki", "dcnn", 0.975), rec("pki3", "ki", "assign", 0.95),
                           {**rec("pki3", "ki", "dcnn", 0.1), "model": "alexnet"}],   # another model: ignored
               "karyotype": {"pki3": {"formula_accuracy": 0.5}}}
    t = targets_table(metrics)
    assert len(t) == len(TARGETS)
    row = t.set_index(["data", "measure"])
    assert row.loc[("pki3, KI", "DCNN"), "met"] is True and row.loc[("pki3, KI", "DCNN"), "ours (test)"] == 0.975
    assert row.loc[("pki3, KI", "assignment"), "met"] is False
    assert row.loc[("pki3, KI", "formula exact (share of cells)"), "ours (test)"] == 0.5
    bio = row.loc[("bioimlab, MI", "assignment")]
    assert bio["met"] is None and bio["ours (test)"] != bio["ours (test)"]     # not measured: NaN
    assert targets_table({})["met"].isna().all()


def test_cv_variants_are_one_fold_each_of_a_recipe_from_the_profiles_pki3_run():
    cv = [n for n in experiments.VARIANTS if experiments.cv_recipe(n)]
    assert len(cv) == experiments.CV_FOLDS * len(experiments.CV_RECIPES)
    for name in cv:
        dataset, changes, how = experiments.VARIANTS[name]
        k = int(name.rsplit(", fold ", 1)[1].split(" of ")[0])
        assert (dataset, how) == ("bioimlab", "run")
        assert changes["val_fold"] == [k - 1, experiments.CV_FOLDS]
        assert changes["init_from"] == {"bioimlab": experiments.PKI3_RUN}    # not the fold's own pki3 run
        assert experiments.seed_recipe(name) is None                     # not a seed repeat of the profile
    assert experiments.cv_recipe("bioimlab: cpu profile, seed 1") is None
    assert experiments.cv_recipe("bioimlab CV: no such recipe, fold 1 of 5") is None
    assert experiments.cv_recipe(f"{experiments.CV}{experiments.CV_BASE}, fold 6 of 5") is None   # not a variant
    cpu = config.load("cpu")                   # the profile's own fine-tuning is one of the recipes
    recipe = experiments.cv_profile_recipe(cpu)
    assert recipe is not None
    assert experiments.CV_RECIPES[recipe]["lr_by_dataset"]["bioimlab"] == cpu.lr_for("bioimlab")
    assert experiments.cv_profile_recipe(config.load("cpu", lr_by_dataset={"bioimlab": 0.3})) is None
    # every setting a recipe changes must match, not only the rate and the epochs
    for name, changes in experiments.CV_RECIPES.items():
        assert experiments.cv_profile_recipe(config.load("cpu", **changes)) == name
    assert experiments.cv_profile_recipe(config.load("cpu", batch_size=16)) is None


def test_cv_table_averages_the_folds_and_compares_fold_by_fold_with_the_profile():
    def row(recipe, fold, dcnn, assign, minutes=3.0):
        return {"variant": f"{experiments.CV}{recipe}, fold {fold} of 5", "dataset": "bioimlab",
                "val_mi_dcnn": dcnn, "val_mi_assign": assign, "train_min": minutes}
    base, lr, long = experiments.CV_BASE, "learning rate 0.02, 20 epochs", "learning rate 0.05, 30 epochs"
    exp = pd.DataFrame([row(base, 1, 0.90, 0.95), row(base, 2, 0.94, 0.97),
                        row(lr, 1, 0.92, 0.96, 2.0), row(lr, 2, 0.94, 0.99, 4.0),
                        row(long, 3, 0.80, 0.90),              # a fold the base recipe has not: no difference
                        {"variant": "bioimlab: cpu profile, seed 1", "dataset": "bioimlab", "val_mi_dcnn": 0.1,
                         "val_mi_assign": 0.1, "train_min": 1.0}])
    t = experiments.cv_table(exp).set_index("recipe")
    assert list(t.index) == [base, lr, long]
    assert t.loc[base, "folds"] == 2
    assert t.loc[base, "dcnn"] == pytest.approx(0.92)
    assert t.loc[base, "dcnn sd"] == pytest.approx(math.sqrt(0.0008))     # (0.02² + 0.02²) / (2 - 1)
    assert t.loc[lr, "dcnn vs base"] == pytest.approx(0.01)               # (0.02 + 0.00) / 2
    assert t.loc[lr, "assign vs base"] == pytest.approx(0.015)
    assert t.loc[lr, "dcnn vs base sd"] == pytest.approx(math.sqrt(2) * 0.01)     # differences 0.02 and 0.00
    assert t.loc[lr, "train_min"] == pytest.approx(3.0)
    assert math.isnan(t.loc[long, "dcnn vs base"])
    assert experiments.cv_table(pd.DataFrame()).empty
    t = experiments.cv_table(exp, base=lr).set_index("recipe")          # against another recipe
    assert t.loc[base, "dcnn vs base"] == pytest.approx(-0.01) and t.loc[lr, "dcnn vs base"] == 0
    exp["size_w0.25"] = exp["val_mi_assign"] + [0.01, 0.0, 0.03, 0.0, 0.0, 0.0]   # the assignment with a prior
    t = experiments.cv_table(exp, base=lr, assign="size_w0.25").set_index("recipe")
    assert t.loc[base, "assign"] == pytest.approx(0.965)                  # (0.96 + 0.97) / 2
    assert t.loc[base, "assign vs base"] == pytest.approx(-0.025)         # (0.96 - 0.99 + 0.97 - 0.99) / 2
    assert t.loc[lr, "dcnn"] == pytest.approx(0.93)                       # DCNN as before
    assert math.isnan(experiments.cv_table(exp, assign="no such column").loc[0, "assign"])
    exp.loc[0, "size_w0.25"] = float("nan")                               # base fold 1 not scored with the prior
    t = experiments.cv_table(exp, base=lr, assign="size_w0.25").set_index("recipe")
    assert t.loc[base, "folds"] == 1 and t.loc[base, "dcnn"] == pytest.approx(0.94)   # fold 2 alone, both measures
    assert t.loc[base, "assign"] == pytest.approx(0.97)
    with pytest.raises(ValueError, match="no such recipe"):
        experiments.cv_table(exp, base="no such recipe")


def test_cv_size_table_compares_each_weight_with_the_prior_off_fold_by_fold():
    def row(fold, off, quarter, recipe="learning rate 0.02, 20 epochs"):
        return {"variant": f"{experiments.CV}{recipe}, fold {fold} of 5", "dataset": "bioimlab",
                "size_w0": off, "size_w0.25": quarter, "size_w1": off - 0.1}
    exp = pd.DataFrame([row(1, 0.90, 0.93), row(2, 0.96, 0.95), row(3, 0.5, 0.5, recipe=experiments.CV_BASE),
                        {"variant": "bioimlab: cpu profile", "dataset": "bioimlab"}])     # no size columns: NaN
    t = experiments.cv_size_table(exp, "learning rate 0.02, 20 epochs").set_index("weight")
    assert list(t.index) == [0.0, 0.25, 1.0] and (t["folds"] == 2).all()
    assert t.loc[0.0, "vs off"] == 0 and t.loc[0.25, "assign"] == pytest.approx(0.94)
    assert t.loc[0.25, "vs off"] == pytest.approx(0.01)                          # (+0.03 - 0.01) / 2
    assert t.loc[0.25, "vs off sd"] == pytest.approx(math.sqrt(2 * 0.02 ** 2))    # deviations ±0.02, n - 1 = 1
    assert t.loc[1.0, "vs off"] == pytest.approx(-0.1)
    assert experiments.cv_size_table(exp, "learning rate 0.01, 20 epochs").empty
    assert experiments.cv_size_table(pd.DataFrame(), experiments.CV_BASE).empty


def test_bioimlab_variants_trained_before_cross_validation_keep_their_learning_rate():
    """cpu.yaml's lr_by_dataset (0.02 for BioImLab) must not change what an earlier BioImLab variant means: each
    keeps 0.05 (its run's digest unchanged) and stays a seed repeat of its recipe; the profile's own rows follow
    the profile."""
    cpu = config.load("cpu")
    assert cpu.lr_for("bioimlab") != 0.05
    assert experiments.BIO_LR_BEFORE["lr_by_dataset"] == experiments.CV_RECIPES[experiments.CV_BASE]["lr_by_dataset"]
    assert set(experiments.CV_AFTER_ADOPTION) < set(experiments.CV_RECIPES)
    for name, (dataset, changes, how) in experiments.VARIANTS.items():
        if dataset != "bioimlab" or how == "pki3-model":
            continue
        lr = experiments.variant_config(name).lr_for("bioimlab")
        if name in experiments.PROFILE_BIO:
            assert lr == cpu.lr_for("bioimlab"), name
        elif not experiments.cv_recipe(name):
            assert lr == 0.05, name
    assert experiments.seed_recipe(f"{experiments.BIO_SEVEN}, seed 1") == experiments.SEVEN_RECIPE
    assert experiments.seed_recipe("bioimlab: 64 px canvas, seed 2") == experiments.SQUARE_RECIPE
    assert experiments.seed_recipe("bioimlab: cpu profile, seed 1") == experiments.PROFILE


def test_ablation_table_puts_the_two_recipes_factor_by_factor_side_by_side():
    from chromo.evaluate import MI_ABLATION

    factors = list(MI_ABLATION)
    assert [experiments.ablation_column(f, "dcnn") for f in (factors[0], factors[2], factors[-1])] == [
        "val_factors_none_dcnn", "val_factors_rotate_bend_dcnn", "val_factors_rotate_bend_neighbour_optics_dcnn"]
    with_, without = experiments.OPTICS_PAIR

    def row(name, dcnn, assign):    # factor k: DCNN dcnn - 0.1 k, assignment assign - 0.05 k
        return {"variant": name, "dataset": "pki3",
                **{experiments.ablation_column(f, "dcnn"): dcnn - 0.1 * k for k, f in enumerate(factors)},
                **{experiments.ablation_column(f, "assign"): assign - 0.05 * k for k, f in enumerate(factors)}}
    exp = pd.DataFrame([row(with_, 0.95, 0.99), row(without, 0.90, 0.92),
                        _row("pki3: 64 px canvas, 8 epochs", 0.9, 0.9)])
    t = experiments.ablation_table(exp)
    assert list(t.index) == factors
    assert t[(with_, "DCNN")].tolist() == pytest.approx([0.95, 0.85, 0.75, 0.65, 0.55])
    assert t[(without, "assignment")].iloc[-1] == pytest.approx(0.92 - 0.05 * 4)
    assert t[("difference", "DCNN")].tolist() == pytest.approx([0.05] * 5)       # with minus without
    assert t[("difference", "assignment")].tolist() == pytest.approx([0.07] * 5)
    # an experiments table that never scored factor by factor (no such columns): nothing to show
    assert experiments.ablation_table(pd.DataFrame([_row(with_, 0.9, 0.9), _row(without, 0.9, 0.9)])).empty
    # not scored factor by factor (a row without the columns, or one missing): nothing to show
    assert experiments.ablation_table(exp[exp["variant"] != without]).empty
    exp.loc[1, experiments.ablation_column(factors[1], "assign")] = float("nan")
    assert experiments.ablation_table(exp).empty
    assert experiments.ablation_table(pd.DataFrame()).empty


def test_the_profile_without_optics_changes_only_the_optics():
    name = experiments.PKI3_NO_OPTICS
    assert experiments.VARIANTS[name] == ("pki3", {"optics": 0.0}, "run")
    assert experiments.OPTICS_PAIR == ("pki3: cpu profile", name)
    assert experiments.seed_recipe(name) is None          # not a seed repeat of the profile
