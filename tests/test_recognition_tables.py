"""chromo.book.recognition's helpers for chapter 11's displayed tables and glued text, each on a tiny
hand-computed table."""
import math

import pandas as pd
import pytest

from chromo.book import recognition as R

NAN = float("nan")


def _row(experiment, dataset, recipe, seed=0, fold=NAN, scores=NAN, **values):
    return {"experiment": experiment, "dataset": dataset, "recipe": recipe, "seed": seed, "fold": fold,
            "scores": scores, **values}


def test_text_formats_a_number_or_says_it_is_missing():
    assert R.text(0.12346) == "0.1235"
    assert R.text(0.0031, "+.4f") == "+0.0031"
    assert R.text(5.0, "d") == "5"
    assert R.text(0.25, "g") == "0.25"
    assert R.text(NAN) == R.text(None) == "not measured"
    assert R.text(NAN, missing="—") == "—"


def test_value_is_nan_for_a_missing_row_or_column():
    t = pd.DataFrame({"dcnn": [0.9, 0.8]}, index=["a", "b"])
    assert R.value(t, "b", "dcnn") == 0.8
    assert math.isnan(R.value(t, "c", "dcnn")) and math.isnan(R.value(t, "a", "assign"))
    assert math.isnan(R.value(t, None, "dcnn"))
    m = t.set_index(pd.MultiIndex.from_tuples([("a", "KI"), ("a", "MI")]))
    assert R.value(m, ("a", "MI"), "dcnn") == 0.8


def test_settings_table_one_titled_row_per_experiment_outside_the_folds():
    exp = pd.DataFrame([
        _row("bioimlab-x", "bioimlab", "x", epochs=20.0, train_min=3.04, hardware="CPU", val_mi_dcnn=0.9,
             val_mi_assign=0.95),
        _row("pki3-x", "pki3", "x", seed=1, epochs=2.1, train_min=2.46, hardware=NAN, val_ki_dcnn=0.91234,
             val_ki_assign=0.9, val_mi_dcnn=0.8, val_mi_assign=0.85),
        _row("pki3-x-no-tta", "pki3", "x, no flip averaging", scores="pki3-x", epochs=2.1, train_min=0.0,
             hardware="CPU", val_ki_dcnn=0.9, val_ki_assign=0.9, val_mi_dcnn=0.8, val_mi_assign=0.8),
        _row("bioimlab-cv", "bioimlab", "cv", fold=1.0, epochs=20.0, train_min=3.0, hardware="CPU",
             val_mi_dcnn=0.9, val_mi_assign=0.9),
    ])
    t = R.settings_table(exp)
    assert list(t.index) == ["pki3: x, seed 1", "pki3: x, no flip averaging", "bioimlab: x"]   # pki3 first
    assert list(t.columns) == ["epochs", "training minutes", "hardware", "KI DCNN", "KI assignment",
                               "MI DCNN", "MI assignment"]
    assert t.loc["pki3: x, seed 1"].tolist() == ["2.1", "2.5", "—", "0.912", "0.900", "0.800", "0.850"]
    scored = t.loc["pki3: x, no flip averaging"]          # scores another experiment's run: trained nothing
    assert scored[["epochs", "training minutes"]].tolist() == ["—", "—"]
    assert t.loc["bioimlab: x"].tolist() == ["20", "3.0", "CPU", "—", "—", "0.900", "0.950"]
    assert list(R.settings_table(exp, ["bioimlab-x", "pki3-x", "absent"]).index) == ["bioimlab: x",
                                                                                    "pki3: x, seed 1"]
    assert R.settings_table(pd.DataFrame(columns=["experiment", "dataset", "fold"])).empty


def test_recorded_curves_by_title_and_the_missing_ones():
    exp = pd.DataFrame([_row("pki3-x", "pki3", "x", seed=1)])
    curves = pd.DataFrame({"experiment": ["pki3-x", "pki3-x", "other"], "fold": NAN, "epoch": [2, 1, 1],
                           "epoch_s": [60.0, 30.0, 1.0], "val_acc": [0.8, 0.5, 0.1]})
    drawn, missing = R.recorded_curves(exp, curves, names=("pki3-x", "pki3-y"))
    assert list(drawn) == ["pki3: x, seed 1"] and missing == ["pki3-y"]    # no title for an unknown one
    assert drawn["pki3: x, seed 1"]["epoch"].tolist() == [1, 2]           # in epoch order
    assert R.recorded_curves(pd.DataFrame(), pd.DataFrame(), names=("a",)) == ({}, ["a"])


def test_yardstick_values_for_the_text():
    exp = pd.DataFrame([_row(f"pki3-profile-seed{s}", "pki3", "cpu profile", seed=s, scores="", val_ki_dcnn=d,
                             val_ki_assign=a) for s, d, a in ((0, 0.90, 0.95), (1, 0.92, 0.97))])
    v = R.yardstick_values(R.yardstick(exp))
    # two seeds 0.90 and 0.92: sample sd = 0.02 / sqrt(2) = 0.014142
    assert v["seed_sd_pki3_dcnn"] == v["seed_sd_pki3_assign"] == "0.0141"
    assert v["seed_spread_pki3_dcnn"] == "0.0141 (2 seeds)"
    assert v["seeds_pki3"] == 2 and v["seed_recipe_pki3"] == "cpu profile"
    assert v["seed_sd_bioimlab_dcnn"] == v["seed_spread_bioimlab_assign"] == "not measured"
    assert v["seeds_bioimlab"] == 0 and v["seed_recipe_bioimlab"] == "none"


def _cv_exp():
    rows = []
    for name, dcnn, prior in (("cv-base", (0.90, 0.92), (0.97, 0.97)), ("cv-x", (0.91, 0.94), (0.96, 0.97)),
                              ("cv-y", (0.91, 0.93), (0.98, 0.98))):
        for fold in (1, 2):
            rows.append(_row(name, "bioimlab", f"cross-validated fine-tuning: {name}", fold=float(fold),
                             train_min=3.0, val_mi_dcnn=dcnn[fold - 1], val_mi_assign=0.9,
                             **{"size_w0.25": prior[fold - 1]}))
    exp = pd.DataFrame(rows)
    return R.cv_table(exp, "cv-base"), R.cv_table(exp, "cv-base", assign="size_w0.25")


def test_cv_show_indexes_by_experiment_with_the_short_recipe():
    cv, _ = _cv_exp()
    shown = R.cv_show(cv)
    assert list(shown.index) == ["cv-base", "cv-x", "cv-y"] and shown.loc["cv-x", "recipe"] == "cv-x"


def test_cv_values_as_text():
    cv, prior = _cv_exp()
    v = R.cv_values(cv, prior, {"x": "cv-x", "gone": None})
    # cv-x: DCNN 0.91 and 0.94 (mean 0.925), against the base's 0.90 and 0.92: +0.01 and +0.02, mean +0.015,
    # sd 0.01 / sqrt(2); with the size prior 0.96 and 0.97 against 0.97 and 0.97: mean -0.005
    assert (v["cv_x_folds"], v["cv_x_dcnn"], v["cv_x_dcnn_vs_base"]) == ("2", "0.9250", "+0.0150")
    assert v["cv_x_dcnn_vs_base_sd"] == "0.0071" and v["cv_x_train_min"] == "3.0"
    assert (v["cv_x_prior_assign"], v["cv_x_prior_assign_vs_base"]) == ("0.9650", "-0.0050")
    assert v["cv_gone_dcnn"] == v["cv_gone_prior_assign_vs_base"] == "not measured"


def test_cv_better_needs_a_gain_in_both_measures():
    cv, prior = _cv_exp()
    # cv-x gains in DCNN but loses with the size prior; cv-y gains +0.01 in both
    assert R.cv_better(cv, prior, "cv-base") == ["cv-y"]
    only_base = cv[cv["experiment"] == "cv-base"], prior[prior["experiment"] == "cv-base"]
    assert R.cv_better(*only_base, "cv-base") is None                    # nothing compared


def test_rotation_row_matches_chromosomes_by_file_name():
    published = pd.DataFrame({"file": [f"cells/c/{k}.tif" for k in (1, 2, 3, 4)],
                              "predicted": ["1", "2", "3", "4"], "true": ["1", "2", "3", "5"]})
    rotated = pd.DataFrame({"file": [f"rotated/c/{k}.tif" for k in (4, 3, 2, 1)],
                            "predicted": ["4", "4", "2", "1"], "true": ["5", "3", "2", "1"]})
    row = R.rotation_row(published, rotated)
    # file 3 changed its label (3 -> 4): 3 of 4 the same; right as published 3 of 4, rotated 2 of 4
    assert row == {"chromosomes": 4, "same label after rotation": 0.75, "accuracy as published": 0.75,
                   "accuracy rotated": pytest.approx(0.5)}
