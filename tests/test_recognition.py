"""Recognition recipe: config checks, flips both ways, flip-averaged inference, transfer identity,
orientation of simulated MI queries, classify on rotated cells (needs the trained cpu runs), and chapter 11's
tables from the experiments table (chromo.book.recognition, on small hand-computed tables)."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from chromo import config
from chromo.book import recognition as R
from chromo.data.augment import flip_batch, rotated_copy
from chromo.data.canvas import orient_canvas
from chromo.data.orient import find_chromosome, principal_angle
from chromo.models import ModelConfig, build_model
from chromo.inference import predict
from tests.conftest import DATA, ROOT, needs_data


def test_config_refuses_string_booleans_bad_patience_and_self_transfer(tmp_path):
    with pytest.raises(config.ConfigError,
                       match="keyword arguments, data: orient must be true or false, not 'off'"):
        config.load("smoke", orient="off")
    with pytest.raises(config.ConfigError, match="training: patience must be at least 1"):
        config.load("smoke", patience=0)
    with pytest.raises(config.ConfigError, match="training: label_smoothing must be in"):
        config.load("smoke", label_smoothing=1.5)
    with pytest.raises(config.ConfigError, match="training: init_from: pki3 cannot start from itself"):
        config.load("smoke", init_from={"pki3": "pki3"})
    assert config.load("smoke", patience=None).training.patience is None


def test_base_profile_is_inherited_and_overridden(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("base: smoke\ntraining: {lr: {default: 0.01}}\n")
    cfg, smoke = config.load(p), config.load("smoke")
    assert cfg.lr_for("eresnet-u1c0", "pki3") == 0.01 and cfg.training.hidden == smoke.training.hidden
    assert cfg.data.max_cells == smoke.data.max_cells and cfg.data.orient == smoke.data.orient


def test_transfer_is_part_of_the_run_identity():
    cfg = config.load("cpu")
    a = cfg.run_digest("bioimlab", "eresnet-u1c0")
    longer_source = config.load("cpu", epochs={**cfg.training.epochs, "pki3": 9})   # the pki3 source changes
    assert longer_source.run_digest("bioimlab", "eresnet-u1c0") != a
    scratch = config.load("cpu")
    scratch.training.init_from = None
    assert scratch.run_digest("bioimlab", "eresnet-u1c0") != a
    assert scratch.run_digest("pki3", "eresnet-u1c0") == cfg.run_digest("pki3", "eresnet-u1c0")


def test_flip_batch_both_ways():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4).repeat(16, 1, 1, 1)  # [32, 1, 3, 4]
    y = flip_batch(x, torch.Generator().manual_seed(0), horizontal=False, vertical=True)
    same = [torch.equal(a, b) for a, b in zip(x, y)]
    vflipped = [torch.equal(a.flip(-2), b) for a, b in zip(x, y)]
    assert all(s or v for s, v in zip(same, vflipped)) and any(same) and any(vflipped)
    y2 = flip_batch(x, torch.Generator().manual_seed(0), horizontal=False, vertical=True)
    assert torch.equal(y, y2)                                       # seeded
    assert torch.equal(flip_batch(x, torch.Generator(), horizontal=False, vertical=False), x)


def test_flip_averaged_predictions_do_not_depend_on_the_flip():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="eresnet-u1c0", canvas=32, backbone="resnet18", hidden=16)).eval()
    cfg = config.load("smoke", canvas=32, tta=True, bf16=False, channels_last=False)
    img = (np.random.default_rng(0).random((3, 32, 32)) * 255).astype(np.uint8)
    lo, fe = predict(model, img, cfg)
    for flipped in (img[:, :, ::-1], img[:, ::-1, :], img[:, ::-1, ::-1]):
        lo2, fe2 = predict(model, np.ascontiguousarray(flipped), cfg)
        np.testing.assert_allclose(lo2, lo, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fe2, fe, rtol=1e-4, atol=1e-5)
    plain, _ = predict(model, np.ascontiguousarray(img[:, ::-1, :]), config.load("smoke", canvas=32,
                                                                                 tta=False, bf16=False))
    assert not np.allclose(plain, lo, atol=1e-5)                    # without tta the flip matters


def _bar(h=40, w=10, canvas=64):
    img = np.zeros((canvas, canvas), np.uint8)
    y0, x0 = (canvas - h) // 2, (canvas - w) // 2
    img[y0:y0 + h, x0:x0 + w] = 200
    img[y0 + 8:y0 + 12, x0:x0 + w] = 90                            # a band
    return img


def test_simulated_mi_queries_come_back_upright_at_the_same_scale():
    from scipy import ndimage

    bar = _bar()
    turned = np.stack([np.clip(ndimage.rotate(bar.astype(float), a, reshape=False, order=1), 0,
                               255).astype(np.uint8)
                       for a in (35.0, -60.0, 80.0)])
    out, angles = orient_canvas(turned)
    assert out.shape == turned.shape and out.dtype == np.uint8
    for o, a in zip(out, angles):
        angle, _ = principal_angle(find_chromosome(o))
        assert abs(angle) <= 2.0 and abs(a) > 30
        assert abs((o > 100).sum() - (bar > 100).sum()) < 0.15 * (bar > 100).sum()   # no rescaling


CPU_RUNS = ROOT / "runs" / "cpu"
needs_cpu_runs = pytest.mark.skipif(
    not all((CPU_RUNS / d / "eresnet-u1c0" / f).exists() for d, f in (("pki3", "features_val_ki.npz"),
                                                                      ("bioimlab", "features_val_mi.npz"))),
    reason="needs the trained cpu runs and their validation features (runs/cpu/<dataset>/eresnet-u1c0 from "
           "`make book`)")


@needs_data
@needs_cpu_runs
@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["pki3", "bioimlab"])
def test_classify_gives_the_same_labels_on_a_rotated_cell(tmp_path, dataset):

    from chromo.book.cells import test_cells
    from chromo.classify import Classifier, cell_files

    cfg = config.load("cpu", data_dir=str(DATA))
    # a whole cell
    cell, folder = next((c, f) for c, f in test_cells(cfg, dataset) if len(cell_files(f)[0]) == 46)
    files = cell_files(folder)[0]
    # dark on white (G-band) / bright on black (Q-band)
    background = 255 if dataset == "pki3" else 0
    rotated_copy(folder, tmp_path / "rot", seed=1, background=background)
    clf = Classifier(CPU_RUNS / dataset / "eresnet-u1c0")
    a, _, _ = clf.classify(files)
    b, _, _ = clf.classify(cell_files(tmp_path / "rot")[0])
    def key(df):
        return df.assign(name=df["file"].map(lambda f: Path(f).name)).set_index("name")["predicted"]
    same = (key(a) == key(b).reindex(key(a).index)).mean()
    assert same >= 0.95, f"{dataset} cell {cell}: only {same:.0%} of labels survive rotation"


# --- chapter 11's tables (chromo.book.recognition) on hand-computed experiments tables ---------------------
NAN = float("nan")


def _exp(experiment, recipe, dcnn, assign, seed=0, dataset="pki3", scores="", fold=NAN, **more):
    """A row of the experiments table (chromo.lab.experiments.rows) with its validation KI accuracies."""
    return {"experiment": experiment, "dataset": dataset, "recipe": recipe, "seed": seed, "fold": fold,
            "scores": scores, "val_ki_dcnn": dcnn, "val_ki_assign": assign, **more}


def test_seed_spread_groups_the_seed_repeats_of_each_recipe_only():
    exp = pd.DataFrame([
        _exp("pki3-profile", "cpu profile", 0.94, 0.97),
        _exp("pki3-square", "64 px canvas", 0.90, 0.95),
        _exp("pki3-square-seed1", "64 px canvas", 0.92, 0.97, seed=1),
        # not seed repeats: a row scoring another experiment's run, a fold, another recipe, a repeated seed
        _exp("pki3-profile-rescored", "cpu profile", 0.50, 0.50, seed=1, scores="pki3-profile"),
        _exp("pki3-square-fold", "64 px canvas", 0.10, 0.10, seed=2, fold=1.0),
        _exp("pki3-square-no-optics", "64 px canvas, no optics augmentation", 0.10, 0.10, seed=1),
        _exp("pki3-seven-epochs", "7 epochs", 0.80, 0.80),
        _exp("pki3-seven-epochs-again", "7 epochs", 0.90, 0.90),
    ])
    s = R.seed_spread(exp).set_index(["recipe", "dataset", "method"])
    square = ("64 px canvas", "pki3", "dcnn")
    # two seeds, 0.90 and 0.92: mean 0.91, sample sd = |0.92 - 0.90| / sqrt(2) = 0.0141421
    assert s.loc[square, "seeds"] == 2 and s.loc[square, "mean"] == pytest.approx(0.91)
    assert s.loc[square, "sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert s.loc[("64 px canvas", "pki3", "assign"), "mean"] == pytest.approx(0.96)
    assert set(s.index.get_level_values("recipe")) == {"64 px canvas"}      # the profile has one seed here
    # the profile has one seed: the 64 px recipe's spread stands in, and says so
    y = R.yardstick(exp)
    assert y.loc[("pki3", "dcnn"), "recipe"] == "64 px canvas"
    assert R.spread_text(y, "pki3", "dcnn") == "0.0141 (2 seeds, 64 px canvas recipe)"
    assert R.spread_text(y, "bioimlab", "dcnn") == "—"
    # with two seeds of its own, the profile's spread is used: 0.94 and 0.96, sd 0.0141421
    own = pd.concat([exp, pd.DataFrame([_exp("pki3-profile-seed1", "cpu profile", 0.96, 0.97, seed=1)])],
                    ignore_index=True)
    y = R.yardstick(own)
    assert y.loc[("pki3", "dcnn"), "recipe"] == "cpu profile"
    assert R.spread_text(y, "pki3", "dcnn") == "0.0141 (2 seeds)"


def test_the_spread_of_the_simulated_mi_is_its_own():
    """pki3 rows carry both query styles: the MI spread comes from the MI columns, never from KI's."""
    exp = pd.DataFrame([_exp(f"pki3-profile{name}", "cpu profile", ki, 0.97, seed=seed, val_mi_dcnn=mi,
                             val_mi_assign=0.96) for name, seed, ki, mi in (("", 0, 0.94, 0.90),
                                                                            ("-seed1", 1, 0.96, 0.93))])
    ki, mi = R.yardstick(exp), R.yardstick(exp, "mi")
    assert ki.loc[("pki3", "dcnn"), "sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert mi.loc[("pki3", "dcnn"), "sd"] == pytest.approx(0.03 / math.sqrt(2))
    assert mi.loc[("pki3", "assign"), "sd"] == pytest.approx(0.0)
    assert R.seed_spread(exp, "mi")["query"].unique().tolist() == ["mi"]
    assert R.seed_spread(exp.drop(columns=["val_mi_dcnn", "val_mi_assign"]), "mi").empty


def test_straight_table_pairs_each_straightened_run_with_its_plain_recipe():
    def row(name, recipe, seed, ki, mi):
        return _exp(name, recipe, ki[0], ki[1], seed=seed, val_mi_dcnn=mi[0], val_mi_assign=mi[1])
    rows = [row("pki3-not-straightened", "not straightened", 0, (0.94, 0.97), (0.90, 0.95)),
            row("pki3-not-straightened-seed1", "not straightened", 1, (0.96, 0.97), (0.92, 0.95)),
            row("pki3-seven-epochs", "7 epochs", 0, (0.95, 0.98), (0.93, 0.96)),
            # the profile's own seeds never stand in for the spread of the recipe without straightening
            row("pki3-profile", "cpu profile", 0, (0.85, 0.98), (0.53, 0.96)),
            row("pki3-profile-seed1", "cpu profile", 1, (0.95, 0.98), (0.93, 0.96))]
    t = R.straight_table(pd.DataFrame(rows)).set_index(["query", "method"])
    assert len(t) == 4                               # KI and MI, DCNN and assignment; BioImLab pairs absent
    assert (t["straightened"] == "pki3-seven-epochs").all()
    assert t.loc[("KI", "dcnn"), "difference"] == pytest.approx(0.01)
    assert t.loc[("MI", "dcnn"), "difference"] == pytest.approx(0.03)
    assert (t.loc[("MI", "dcnn"), "without"], t.loc[("MI", "dcnn"), "with"]) == (0.90, 0.93)
    # 0.90 and 0.92 over the unstraightened seeds: sd 0.02 / sqrt(2)
    assert t.loc[("MI", "dcnn"), "seed sd (without)"] == pytest.approx(0.02 / math.sqrt(2))
    assert t.loc[("KI", "assign"), "seed sd (without)"] == pytest.approx(0.0)
    assert R.straight_table(pd.DataFrame(rows[:2])).empty


def test_targets_table_reads_the_run_and_says_met_or_not():
    """Each target beside the run's number: met at or above it, missed below, None where not measured."""
    rec = lambda d, q, m, a: {"dataset": d, "query": q, "method": m, "model": "eresnet-u1c0",  # noqa: E731
                              "distance": None, "accuracy_mean_cell": a}
    metrics = {"records": [rec("pki3", "ki", "dcnn", 0.975), rec("pki3", "ki", "assign", 0.95),
                           {**rec("pki3", "ki", "dcnn", 0.1), "model": "alexnet"}],   # another model: ignored
               "karyotype": {"pki3": {"formula_accuracy": 0.5}}}
    t = R.targets_table(metrics)
    assert len(t) == len(R.TARGETS)
    row = t.set_index(["data", "measure"])
    dcnn = row.loc[("pki3, KI", "DCNN")]
    assert dcnn["met"] is True and dcnn["ours (test)"] == 0.975
    assert row.loc[("pki3, KI", "assignment"), "met"] is False
    assert row.loc[("pki3, KI", "formula exact (share of cells)"), "ours (test)"] == 0.5
    bio = row.loc[("bioimlab, MI", "assignment")]
    assert bio["met"] is None and bio["ours (test)"] != bio["ours (test)"]     # not measured: NaN
    assert R.targets_table({})["met"].isna().all()


BASE, LR, LONG = "bioimlab-cv-lr0.05", "bioimlab-cv-lr0.02", "bioimlab-cv-lr0.05-30-epochs"


def _fold(name, fold, **values):
    return {"experiment": name, "dataset": "bioimlab", "recipe": f"cross-validated fine-tuning: {name}",
            "seed": 0, "fold": float(fold), "scores": "", **values}


def test_cv_table_averages_the_folds_and_compares_fold_by_fold_with_the_base():
    def row(name, fold, dcnn, assign, minutes=3.0):
        return _fold(name, fold, val_mi_dcnn=dcnn, val_mi_assign=assign, train_min=minutes)
    exp = pd.DataFrame([row(BASE, 1, 0.90, 0.95), row(BASE, 2, 0.94, 0.97),
                        row(LR, 1, 0.92, 0.96, 2.0), row(LR, 2, 0.94, 0.99, 4.0),
                        row(LONG, 3, 0.80, 0.90),              # a fold the base has not: no difference
                        {**_exp("bioimlab-profile-seed1", "cpu profile", NAN, NAN, seed=1,
                                dataset="bioimlab"),                      # no fold: not counted
                         "val_mi_dcnn": 0.1, "val_mi_assign": 0.1, "train_min": 1.0}])
    t = R.cv_table(exp, BASE).set_index("experiment")
    assert list(t.index) == [BASE, LR, LONG] and t.loc[LR, "recipe"] == f"cross-validated fine-tuning: {LR}"
    assert t.loc[BASE, "folds"] == 2
    assert t.loc[BASE, "dcnn"] == pytest.approx(0.92)
    assert t.loc[BASE, "dcnn sd"] == pytest.approx(math.sqrt(0.0008))     # (0.02² + 0.02²) / (2 - 1)
    assert t.loc[LR, "dcnn vs base"] == pytest.approx(0.01)               # (0.02 + 0.00) / 2
    assert t.loc[LR, "assign vs base"] == pytest.approx(0.015)
    assert t.loc[LR, "dcnn vs base sd"] == pytest.approx(math.sqrt(2) * 0.01)     # differences 0.02 and 0.00
    assert t.loc[LR, "train_min"] == pytest.approx(3.0)
    assert math.isnan(t.loc[LONG, "dcnn vs base"])
    assert R.cv_table(pd.DataFrame(columns=["experiment", "dataset", "fold"]), BASE).empty   # no table yet
    t = R.cv_table(exp, LR).set_index("experiment")                     # against another experiment
    assert t.loc[BASE, "dcnn vs base"] == pytest.approx(-0.01) and t.loc[LR, "dcnn vs base"] == 0
    assert R.cv_table(exp, "no-such-experiment")["dcnn vs base"].isna().all()   # nothing to compare with
    exp["size_w0.25"] = exp["val_mi_assign"] + [0.01, 0.0, 0.03, 0.0, 0.0, 0.0]   # the assignment, prior on
    t = R.cv_table(exp, LR, assign="size_w0.25").set_index("experiment")
    assert t.loc[BASE, "assign"] == pytest.approx(0.965)                  # (0.96 + 0.97) / 2
    assert t.loc[BASE, "assign vs base"] == pytest.approx(-0.025)         # (0.96 - 0.99 + 0.97 - 0.99) / 2
    assert t.loc[LR, "dcnn"] == pytest.approx(0.93)                       # DCNN as before
    assert math.isnan(R.cv_table(exp, BASE, assign="no such column").loc[0, "assign"])
    exp.loc[0, "size_w0.25"] = NAN                                    # base fold 1 not scored with the prior
    t = R.cv_table(exp, LR, assign="size_w0.25").set_index("experiment")
    assert t.loc[BASE, "folds"] == 1 and t.loc[BASE, "dcnn"] == pytest.approx(0.94)   # fold 2 alone
    assert t.loc[BASE, "assign"] == pytest.approx(0.97)


def test_cv_size_table_compares_each_weight_with_the_prior_off_fold_by_fold():
    def row(fold, off, quarter, name=LR):
        return _fold(name, fold, **{"size_w0": off, "size_w0.25": quarter, "size_w1": off - 0.1})
    exp = pd.DataFrame([row(1, 0.90, 0.93), row(2, 0.96, 0.95), row(3, 0.5, 0.5, name=BASE),
                        _exp("bioimlab-profile", "cpu profile", NAN, NAN, dataset="bioimlab")])   # no size_w
    t = R.cv_size_table(exp, LR).set_index("weight")
    assert list(t.index) == [0.0, 0.25, 1.0] and (t["folds"] == 2).all()
    assert t.loc[0.0, "vs off"] == 0 and t.loc[0.25, "assign"] == pytest.approx(0.94)
    assert t.loc[0.25, "vs off"] == pytest.approx(0.01)                          # (+0.03 - 0.01) / 2
    assert t.loc[0.25, "vs off sd"] == pytest.approx(math.sqrt(2 * 0.02 ** 2))   # deviations ±0.02, n - 1 = 1
    assert t.loc[1.0, "vs off"] == pytest.approx(-0.1)
    assert R.cv_size_table(exp, "bioimlab-cv-lr0.01").empty
    assert R.cv_size_table(pd.DataFrame(columns=["experiment", "dataset", "fold"]), BASE).empty


def test_ablation_table_puts_the_two_experiments_factor_by_factor_side_by_side():
    from chromo.evaluate import MI_ABLATION

    # the columns chromo.lab.experiments writes are the ones the table reads
    assert list(R.FACTORS) == ["_".join(f) or "none" for f in MI_ABLATION.values()]
    with_, without = R.OPTICS_PAIR

    def row(name, dcnn, assign):    # factor k: DCNN dcnn - 0.1 k, assignment assign - 0.05 k
        return {"experiment": name, "dataset": "pki3",
                **{f"val_factors_{f}_dcnn": dcnn - 0.1 * k for k, f in enumerate(R.FACTORS)},
                **{f"val_factors_{f}_assign": assign - 0.05 * k for k, f in enumerate(R.FACTORS)}}
    exp = pd.DataFrame([row(with_, 0.95, 0.99), row(without, 0.90, 0.92),
                        _exp("pki3-square", "64 px canvas", 0.9, 0.9)])
    t = R.ablation_table(exp)
    assert list(t.index) == list(R.FACTORS)
    assert t[(with_, "DCNN")].tolist() == pytest.approx([0.95, 0.85, 0.75, 0.65, 0.55])
    assert t[(without, "assignment")].iloc[-1] == pytest.approx(0.92 - 0.05 * 4)
    assert t[("difference", "DCNN")].tolist() == pytest.approx([0.05] * 5)       # with minus without
    assert t[("difference", "assignment")].tolist() == pytest.approx([0.07] * 5)
    # an experiments table that never scored factor by factor (no such columns): nothing to show
    assert R.ablation_table(pd.DataFrame([_exp(with_, "a", 0.9, 0.9), _exp(without, "b", 0.9, 0.9)])).empty
    # not scored factor by factor (a row without the columns, or one value missing): nothing to show
    assert R.ablation_table(exp[exp["experiment"] != without]).empty
    exp.loc[1, f"val_factors_{R.FACTORS[1]}_assign"] = NAN
    assert R.ablation_table(exp).empty
    assert R.ablation_table(pd.DataFrame()).empty
