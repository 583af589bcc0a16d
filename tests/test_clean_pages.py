"""The book's clean pages: chromosome grids large enough to see (plots.common_crop, plots.chromosome_grid),
the reproducibility chapter's generated tables (chromo.book.reproducibility, each on a tiny hand-computed
table), and its place in the main job's plan (last, in the About part)."""
import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

matplotlib.use("Agg")

from chromo import config  # noqa: E402
from chromo.book import pipeline, plots  # noqa: E402
from chromo.book import reproducibility as R  # noqa: E402

NAN = float("nan")


def _row(experiment, dataset, recipe, seed=0, fold=NAN, scores=NAN, train_min=1.0, **values):
    return {"experiment": experiment, "dataset": dataset, "recipe": recipe, "seed": seed, "fold": fold,
            "scores": scores, "train_min": train_min, **values}


# --- chromosome grids ----------------------------------------------------------------------------------
def test_common_crop_is_the_box_of_every_image_together():
    a, b = np.zeros((10, 6), np.uint8), np.zeros((10, 6), np.uint8)
    a[2:4, 1:3] = 200          # rows 2-3, columns 1-2
    b[5:8, 2:5] = 100          # rows 5-7, columns 2-4
    rows, cols = plots.common_crop([a, b])
    assert (rows, cols) == (slice(2, 8), slice(1, 5))
    assert plots.common_crop([np.zeros((4, 4))]) == (slice(None), slice(None))   # nothing: no crop


def test_chromosome_grid_puts_at_most_eight_per_row_at_the_height_asked():
    imgs = [np.pad(np.full((20, 5), 255, np.uint8), ((10, 10), (5, 5))) for _ in range(12)]   # 40 x 15
    fig = plots.chromosome_grid(imgs, [str(i) for i in range(12)], height=2.0)
    axes = fig.axes
    assert len(axes) == 16                             # 2 rows of 8, the last 4 empty
    assert sum(bool(ax.images) for ax in axes) == 12
    assert axes[0].images[0].get_array().shape == (20, 5)      # cropped to the common box
    w, h = fig.get_size_inches()
    assert h == pytest.approx(2 * (2.0 + 0.3))         # each row the height asked, with room for its titles
    assert w == pytest.approx(8 * 0.9)                 # a thin crop still gets room for its title
    matplotlib.pyplot.close(fig)


# --- profiles and runs ---------------------------------------------------------------------------------
def test_models_and_epochs_text():
    assert R.models_text({"pki3": ["eresnet-u1c0", "eresnet-u0c0", "eresnet-u2c1", "alexnet"],
                          "bioimlab": ["eresnet-u1c0"]}) == \
        "pki3: eresnet-u1c0, 2 Extended Block variants, alexnet; bioimlab: eresnet-u1c0"
    cfg = config.from_values({"training": {
        "epochs": {"default": 14, "alexnet": 2.2, "bioimlab": 20},
        "models": {"pki3": ["eresnet-u1c0", "alexnet"], "bioimlab": ["eresnet-u1c0", "alexnet"]}}})
    # a per-model value beats a per-dataset one (Config.epochs_for): BioImLab's AlexNet gets 2.2
    assert R.epochs_text(cfg) == "pki3: eresnet-u1c0 14, alexnet 2.2; bioimlab: eresnet-u1c0 20, alexnet 2.2"
    same = config.from_values({"training": {"epochs": {"default": 3},
                                            "models": {"pki3": ["eresnet-u1c0", "alexnet"]}}})
    assert R.epochs_text(same) == "pki3: 3 each"


def test_profile_table_lists_every_profile_from_its_file():
    t = R.profile_table()
    assert list(t.index[:4]) == ["smoke", "cpu", "gpu", "gpu-toy"]
    assert set(t.index) == {p.stem for p in (config.project_root() / "configs").glob("*.yaml")}
    cpu = config.load("cpu")
    assert t.loc["cpu", "backbone"] == cpu.training.backbone and t.loc["cpu", "cells"] == "all"
    assert t.loc["smoke", "cells"].startswith("train ")
    assert not t.isna().any(axis=None)


def test_a_run_not_trained_reads_as_words(tmp_path):
    cfg = config.load("smoke", runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results"))
    t = R.run_table(cfg)
    assert len(t) == sum(len(m) for m in cfg.training.models.values())
    assert all(e.startswith("not trained: no finished run in ") for e in t["epochs"])
    assert not t.isna().any(axis=None)
    v = R.versions_table(cfg, {"python": "3.11", "torch": "2.0"})
    assert list(v["the runs"]) == ["—", "—"] and list(v["this execution"]) == ["3.11", "2.0"]


def test_main_job_minutes_from_metrics():
    m = {"wall_time_s": {"01_data_pki3": 60.0, "02_train": 120.0, "total": 180.0},
         "training_time_s": {"pki3/eresnet-u1c0": 600.0, "pki3/alexnet": 66.0, "pki3/vgg16": None},
         "reused_training_s": 666.0, "fresh_main_job_estimate_s": 846.0, "hardware": "CPU",
         "git_commit": "abc"}
    out = R.main_job_minutes(m)
    assert out["notebooks"] == 3.0 and out["executions"] == 2
    assert out["reused"] == 11.1 and out["fresh"] == 14.1
    assert out["training"] == 11.1 and out["runs"] == {"pki3/eresnet-u1c0": 10.0, "pki3/alexnet": 1.1}
    assert (out["hardware"], out["commit"]) == ("CPU", "abc")
    assert R.main_job_minutes({})["notebooks"] is None and R.main_job_minutes({})["training"] is None


# --- the recipe's choices ------------------------------------------------------------------------------
def _choices_table():
    return pd.DataFrame([
        _row("p", "pki3", "mine", seed=0, train_min=10.0, val_ki_dcnn=0.90, val_mi_dcnn=0.80),
        _row("p1", "pki3", "mine", seed=1, train_min=12.0, val_ki_dcnn=0.94, val_mi_dcnn=0.84),
        _row("o", "pki3", "other", seed=0, train_min=8.0, val_ki_dcnn=0.88, val_mi_dcnn=0.70),
        _row("o-scored", "pki3", "other, scored", seed=0, scores="p", train_min=0.0, val_ki_dcnn=0.85,
             val_mi_dcnn=NAN),
        _row("cv", "bioimlab", "mine", fold=1.0, val_mi_dcnn=0.5),                # a fold: never compared
    ])


def test_compare_uses_the_seeds_both_recipes_have():
    c = R.compare(_choices_table(), "pki3", "mine", "other")
    assert c["seeds"] == 1                                     # only seed 0 has both
    assert c["val_ki_dcnn"] == pytest.approx((0.90, 0.88)) and c["val_mi_dcnn"] == pytest.approx((0.80, 0.70))
    assert "val_ki_assign" not in c                            # not measured: left out
    assert c["minutes"] == pytest.approx((10.0, 8.0))
    assert R.compare(_choices_table(), "pki3", "mine", "absent") is None
    scored = R.compare(_choices_table(), "pki3", "mine", "other, scored")
    assert np.isnan(scored["minutes"][1]) and "val_mi_dcnn" not in scored


def test_choice_table_one_row_per_measured_choice():
    choices = (("a choice", ("pki3",), "mine", "other"), ("scored", ("pki3",), "mine", "other, scored"),
               ("never measured", ("pki3",), "mine", "absent"))
    t = R.choice_table(_choices_table(), choices)
    assert list(t.index) == [("a choice", "pki3"), ("scored", "pki3")]
    row = t.loc[("a choice", "pki3")]
    assert row["KI DCNN"] == "0.900 (+0.020)" and row["MI DCNN"] == "0.800 (+0.100)"
    assert row["KI assignment"] == "—" and row["minutes"] == "10.0 / 8.0" and row["seeds"] == 1
    assert t.loc[("scored", "pki3"), "minutes"] == "10.0 / —"
    assert R.choice_table(pd.DataFrame(columns=["experiment", "dataset", "fold"]), choices).empty
    assert {d for _, ds, _, _ in R.CHOICES for d in ds} <= {"pki3", "bioimlab"}
    assert len({(s, d) for s, d, _, _ in R.CHOICES}) == len(R.CHOICES)     # each row named once


def _cv_table():
    rows = []
    # per experiment: its two folds' DCNN, assignment without the size prior and with it at 0.25
    spec = (("cv-a", "rate a", (0.90, 0.92), (0.95, 0.96), (0.97, 0.98)),
            ("cv-b", "rate b", (0.91, 0.95), (0.94, 0.96), (0.96, 0.99)))
    for name, rate, dcnn, w0, w25 in spec:
        recipe = f"cross-validated fine-tuning: {rate}"
        for k in (0, 1):
            rows.append(_row(name, "bioimlab", recipe, fold=float(k + 1), train_min=3.0, val_mi_dcnn=dcnn[k],
                             val_mi_assign=w0[k], **{"size_w0": w0[k], "size_w0.25": w25[k]}))
    return pd.DataFrame(rows)


def test_cv_choice_table_against_the_profiles_fine_tuning():
    t = R.cv_choice_table(_cv_table(), "cv-a", 0.25)
    assert list(t["recipe"]) == ["rate a", "rate b"]
    assert t.loc["cv-a", "DCNN"] == "0.9100" and t.loc["cv-a", "DCNN vs the profile's"] == "—"
    assert t.loc["cv-b", "DCNN vs the profile's"] == "+0.0200"           # (0.01 + 0.03) / 2
    assert t.loc["cv-b", "assignment"] == "0.9750"                       # with the size prior at 0.25
    assert t.loc["cv-b", "assignment vs the profile's"] == "+0.0000"     # (-0.01 + 0.01) / 2
    assert t.loc["cv-a", "minutes per fold"] == "3.0" and t["folds"].tolist() == [2, 2]
    assert R.cv_choice_table(_cv_table(), None).empty
    w = R.size_weight_table(_cv_table(), "cv-a")
    assert list(w.index) == ["0", "0.25"] and list(w["folds"]) == [2, 2]
    assert w.loc["0.25", "assignment"] == "0.9750" and w.loc["0.25", "vs off"] == "+0.0200"
    assert R.size_weight_table(_cv_table(), None).empty


def test_spread_table_mean_and_sd_over_seeds():
    exp = pd.DataFrame([_row(f"s{s}", "pki3", "r", seed=s, train_min=m, val_ki_dcnn=v, val_ki_assign=0.9)
                        for s, m, v in ((0, 10.0, 0.90), (1, 12.0, 0.92), (2, 14.0, 0.94))])
    t = R.spread_table(exp)
    assert t.loc[("pki3", "r"), "DCNN"] == "0.920 (0.020)"
    assert t.loc[("pki3", "r"), "assignment"] == "0.900 (0.000)"
    assert t.loc[("pki3", "r"), "seeds"] == 3 and t.loc[("pki3", "r"), "minutes per seed"] == "12.0"
    assert R.spread_table(exp.iloc[:1]).empty


def test_deviations_come_from_the_profile():
    cfg = config.load("cpu")
    t = R.deviations(cfg, "the paper's data")
    col = "the cpu profile"
    assert t.loc["data", "the paper"] == "the paper's data"
    assert t.loc["backbone", col] == cfg.training.backbone
    assert t.loc["training budget", col] == R.epochs_text(cfg)
    assert t.loc["VGG16", col] == ("trained" if any("vgg16" in m for m in cfg.training.models.values())
                                   else "not trained")
    assert f"{cfg.training.alpha:g}" in t.loc["center-loss weight", col]
    gpu = R.deviations(config.load("gpu"), "x")
    assert gpu.loc["VGG16", "the gpu profile"] == "trained"
    assert gpu.loc["Extended Block variants", "the gpu profile"] == "trained end to end"
    assert not t.isna().any(axis=None)


# --- the chapter's place in the main job ---------------------------------------------------------------
@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_reproducibility_chapter_runs_last_and_closes_the_book(profile, tmp_path):
    cfg = config.load(profile)
    steps = pipeline.plan(cfg)
    assert steps[-1]["nb"] == "15_reproducibility"
    assert steps[-1]["params"] == {"config": f"configs/{profile}.yaml"}
    pipeline.write_toc(cfg, tmp_path)
    toc = yaml.safe_load((tmp_path / "_toc.yml").read_text())
    about = toc["parts"][-1]
    assert about["caption"] == "About"
    assert [c["file"] for c in about["chapters"]] == ["notebooks/15_reproducibility", "references"]
    assert "reproducibility.md" not in pipeline.STATIC


def test_the_chapter_notebook_has_a_tiny_parameters_cell():
    nb = json.loads((config.project_root() / "notebooks" / "15_reproducibility.ipynb").read_text())
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and nb["cells"].index(params[0]) == 1
    words = "".join(params[0]["source"]).split()
    assert words == ["config", "=", '"configs/smoke.yaml"']                 # the profile alone
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def test_formula_basis_counts_what_the_formula_accuracy_rests_on():
    t = pd.DataFrame({
        "cell": ["a", "b", "c", "d", "e"], "chromosomes": [46, 46, 46, 45, 47],
        "true_formula": ["46,XX", "46,XY", "46,XY", "45,XY,-21", "47,XXY"],
        "abnormal": [False, False, False, True, True],
        "predicted_abnormal": [False, False, True, True, True],
        "formula_correct": [True, False, False, True, False]})
    b = R.formula_basis(t)
    assert (b["cells"], b["normal"], b["abnormal"]) == (5, 3, 2)
    assert b["normal_share"] == pytest.approx(0.6)
    assert b["normal_kept_normal"] == 2 and b["normal_right"] == 1        # b: right count, wrong sex
    assert b["abnormal_right"] == 1 and b["abnormal_formulas"] == ["45,XY,-21", "47,XXY"]
    assert (b["fewer"], b["more"]) == (1, 1)
    assert R.formula_basis(t.iloc[:0])["cells"] == 0


def test_curve_agreement_compares_a_run_with_its_experiment(tmp_path):
    cfg = config.load("smoke", runs_dir=str(tmp_path / "runs"))
    curves = pd.DataFrame({"experiment": ["e"] * 3, "fold": [NAN] * 3, "epoch": [1, 2, 3],
                           "val_acc": [0.5, 0.6, 0.7]})
    pairs = {("pki3", "eresnet-u1c0"): "e"}
    assert R.curve_agreement(cfg, curves, pairs).empty                 # no finished run: nothing compared
    run = cfg.run_dir("pki3", "eresnet-u1c0")
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"")
    (run / "done.json").write_text(json.dumps({"train_s": 1.0}))
    pd.DataFrame({"epoch": [1, 2], "val_acc": [0.5, 0.62]}).to_csv(run / "log.csv", index=False)
    t = R.curve_agreement(cfg, curves, pairs)
    assert t.to_dict("records") == [{"run": "pki3/eresnet-u1c0", "experiment": "e", "epochs compared": 2,
                                     "largest difference": pytest.approx(0.02)}]


# --- glue ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted((config.project_root() / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_every_glued_number_in_the_prose_is_glued_by_the_notebook(path):
    """A {glue:text}`key` whose key no code cell glues breaks the book's build; an f-string key
    (glue(f"size_{dataset}")) covers every key of its shape."""
    import re

    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    shapes = [re.escape(k) for k in re.findall(r'glue\("([^"{}]+)"', code)]
    shapes += [re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(k)) for k in re.findall(r'glue\(f"([^"]+)"', code)]
    shapes += [r"[a-z_0-9]+"] if re.search(r'glue\((?!f?")', code) else []     # a key computed in code
    used = {k.split(":")[0] for k in re.findall(r"\{glue:(?:text|figure|)\}`([^`]+)`", prose)}
    missing = sorted(k for k in used if not any(re.fullmatch(s, k) for s in shapes))
    assert not missing, f"{path.name}: the prose glues {missing}, which no code cell glues"
