"""Chapters 07, 10, 12 and 13: the paper's tables beside ours (chromo.book.paper), the claims table as shown
and read (chromo.book.claims), and Fig. 5's legend clear of the bars (chromo.book.diagrams). Hand-computed
examples."""
import json
import shutil

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from chromo import config  # noqa: E402
from chromo.lab import baselines
from chromo.book import claims, diagrams, paper  # noqa: E402
from chromo.run import Run  # noqa: E402


def _records(rows):
    return pd.DataFrame([{"dataset": d, "model": m, "method": me, "query": q, "distance": dist,
                          "accuracy_mean_cell": a} for d, m, me, q, dist, a in rows])


RECS = _records([
    ("pki3", "eresnet-u1c0", "dcnn", "mi", None, 0.91),
    ("pki3", "eresnet-u1c0", "lfv+lrd", "mi", "cosine", 0.95),
    ("pki3", "eresnet-u1c0", "lfv+lrd", "mi", "euclid", 0.10),
    ("pki3", "eresnet-u1c0", "lfv", "mi", "cosine", 0.94),
    ("pki3", "eresnet-u1c0", "lfv", "mi", "euclid", 0.93),
    ("pki3", "eresnet-u1c0", "dcnn", "ki", None, 0.96),
    ("pki3", "eresnet-u1c0", "lfv+lrd", "ki", "cosine", 0.97),
    ("pki3", "eresnet-u1c0", "fvm", "mi", "cosine", 0.98),
    ("pki3", "eresnet-u1c0", "fvm", "mi", "euclid", 0.20),
    ("pki3", "eresnet-u1c0", "fvm", "ki", "cosine", 0.90),
    ("pki3", "eresnet-u1c0", "assign", "ki", None, 0.99),
    ("pki3", "alexnet", "dcnn", "ki", None, 0.35),
])


# --- chromo.book.paper: the paper's layouts with ours -----------------------------------------------------

def test_pct_prints_a_fraction_as_the_paper_does_and_keeps_words():
    assert paper.pct(0.8975) == "89.75" and paper.pct(1.0) == "100.00" and paper.pct(0.90685) == "90.69"
    assert paper.pct("not trained") == "not trained"


def test_ours_at_takes_the_papers_fvm_as_mi_queries_and_the_cosine_base():
    assert paper.ours_at(RECS, "pki3", "eresnet-u1c0", "fvm", None) == 0.98         # MI, cosine
    assert paper.ours_at(RECS, "pki3", "eresnet-u1c0", "lfv+lrd", "mi", "euclid") == 0.10
    assert paper.ours_at(RECS, "pki3", "eresnet-u1c0", "dcnn", "ki") == 0.96
    assert paper.ours_at(RECS, "bioimlab", "eresnet-u1c0", "dcnn", "mi") is None
    assert paper.ours_at(RECS.iloc[:0], "pki3", "eresnet-u1c0", "dcnn", "ki") is None
    assert paper.ours_at(pd.DataFrame(), "pki3", "eresnet-u1c0", "dcnn", "ki") is None


def test_ours_in_table1s_layout_says_why_in_words_never_nan():
    t = paper.ours_in_layout("Table 1", RECS, "pki3", why={"vgg16": "not trained: 133 min"})
    assert list(t.index) == ["AlexNet", "Vgg16", "ResNet50", "EResNet"]
    assert list(t.columns) == ["DCNN+MI", "LFV+MI", "DCNN+KI", "LFV+KI", "FVM"]
    assert t.loc["EResNet"].tolist() == [0.91, 0.95, 0.96, 0.97, 0.98]
    assert t.loc["AlexNet", "DCNN+KI"] == 0.35 and t.loc["AlexNet", "FVM"] == "not measured"   # others absent
    assert (t.loc["Vgg16"] == "not trained: 133 min").all()
    assert (t.loc["ResNet50"] == "not trained").all()                                     # the default
    assert not t.isna().any().any()


def test_beside_puts_the_papers_row_directly_above_ours_in_percent():
    ours = paper.ours_in_layout("Table 1", RECS, "pki3")
    t = paper.beside(paper.table1(), {"ours, pki3": ours})
    assert list(t.index[:4]) == [("AlexNet", "paper"), ("AlexNet", "ours, pki3"), ("Vgg16", "paper"),
                                 ("Vgg16", "ours, pki3")]
    assert t.loc[("EResNet", "paper")].tolist() == ["90.68", "94.72", "91.93", "95.34", "95.96"]
    assert t.loc[("EResNet", "ours, pki3")].tolist() == ["91.00", "95.00", "96.00", "97.00", "98.00"]
    two = paper.beside(paper.fig9(), {"a": paper.ours_in_layout("Fig. 9", RECS, "pki3"),
                                      "b": paper.ours_in_layout("Fig. 9", RECS, "bioimlab", fill="none")})
    assert list(two.index[:3]) == [("LFV+MI", "paper"), ("LFV+MI", "a"), ("LFV+MI", "b")]
    assert two.loc[("LFV+MI", "a")].tolist() == ["95.00", "94.00"]          # with LRd, without
    assert two.loc[("LFV+MI", "b")].tolist() == ["not trained", "not trained"]


def test_table4_layout_in_the_papers_row_order():
    heads = _records([("pki3", f"eresnet-{v}", "lfv+lrd", "mi", "cosine", 0.5 + i / 100)
                      for i, v in enumerate(["u0c0", "u1c0", "u3c2"])])
    t = paper.ours_in_layout("Table 4", heads, "pki3")
    assert list(t.index) == ["u3c2", "u3c1", "u2c1", "u1c1", "u3c0", "u2c0", "u1c0", "u0c0"]
    assert t.loc["u3c2", "LFV+MI"] == 0.52 and t.loc["u0c0", "LFV+MI"] == 0.5
    assert t.loc["u1c0", "DCNN+KI"] == "not measured" and t.loc["u2c0", "LFV+MI"] == "not trained"


def test_ours_fig10_reads_the_rounds_and_the_bases():
    t = paper.ours_fig10(RECS, "pki3")
    assert t.loc["d_first", "cosine"] == 0.94 and t.loc["d_first", "euclid"] == 0.93
    assert t.loc["d_second", "cosine"] == 0.95 and t.loc["d_second", "euclid"] == 0.10
    assert (paper.ours_fig10(RECS, "bioimlab") == "not measured").all().all()


def test_side_by_side_says_what_the_paper_lacks_and_why_a_model_is_missing():
    models = {"pki3": ["eresnet-u1c0", "alexnet"], "bioimlab": ["eresnet-u1c0"]}
    side = paper.side_by_side(RECS, "cpu", models, why={"vgg16": "not trained: 133 min"})
    assert "—" not in set(side["paper"])
    beyond = side[side["paper item"] == "beyond"]
    assert set(beyond["paper"]) == {paper.NOT_IN_PAPER} and len(beyond) == 2
    vgg = side[side["model"] == "vgg16"].iloc[0]
    assert vgg["ours"] == "not trained" and vgg["our run"] == "not trained: 133 min"
    resnet = side[side["model"] == "resnet50"].iloc[0]      # no `why` for it: the default words
    assert "does not train resnet50" in resnet["our run"]


# --- chromo.book.claims: the equal budget, the learning rates, the claims as shown --------------------------

def test_training_cost_is_epochs_of_the_training_split_at_the_measured_speed():
    cfg = config.load("configs/cpu.yaml")
    c = baselines.training_cost(cfg, "vgg16", images_per_s=10.0, train_images=1000)
    assert c["epochs"] == cfg.epochs_for("alexnet", "pki3") == 2.2
    assert c["minutes"] == pytest.approx(2.2 * 1000 / 10 / 60)     # 3.67 minutes


def _table(rows):
    cols = ["key", "claim", "paper's evidence", "data", "compared", "ours (better)", "ours (worse)",
            "difference", "95% CI low", "95% CI high", "cells", "verdict", "note", "group"]
    return pd.DataFrame(rows, columns=cols)


NAN = float("nan")
TABLE = _table([
    ["cosine", claims.CLAIMS["cosine"], "Fig. 10", "pki3, KI", "cosine vs Euclid", 0.95, 0.96, -0.0100,
     -0.0250, 0.0050, 40, "cannot tell", "", "method"],
    ["cosine", claims.CLAIMS["cosine"], "Fig. 10", "pki3, MI", "cosine vs Euclid", 0.95, 0.97, -0.0200,
     -0.0300, -0.0100, 40, "does not hold", "", "method"],
    ["cosine", claims.CLAIMS["cosine"], "Fig. 10", "bioimlab, MI", "cosine vs Euclid", 0.93, 0.90, 0.0300,
     0.0100, 0.0500, 49, "holds", "", "method"],
    ["variant", claims.CLAIMS["variant"], "Table 4", "pki3, MI", "u1c0 vs u0c0", 0.9, 0.9, -0.00001,
     -0.0040, 0.0040, 40, "cannot tell", "heads", "variant"],
    ["baseline", claims.CLAIMS["baseline"], "Table 1", "pki3, KI", "EResNet vs AlexNet", NAN, NAN, NAN, NAN,
     NAN, 0, claims.NOT_TESTED, "not trained here", "baseline"],
])


def test_shown_gives_points_and_words_never_nan():
    s = claims.shown(TABLE)
    assert s.index.names == ["claim", "data"]
    r = s.iloc[0]
    assert (r["better (%)"], r["worse (%)"], r["difference (points)"]) == ("95.00", "96.00", "-1.00")
    assert r["95% interval (points)"] == "-2.50 to +0.50" and r["cells"] == 40
    assert s.iloc[2]["difference (points)"] == "+3.00"
    assert s.iloc[3]["difference (points)"] == "-0.00"             # -0.001 points: rounds to zero, signed
    assert claims.shown(TABLE.assign(difference=0.0)).iloc[0]["difference (points)"] == "0.00"
    assert s.iloc[4]["verdict"] == "not tested: not trained here" and s.iloc[4]["difference (points)"] == ""
    assert not s.isna().any().any()


def test_an_interval_end_that_is_zero_but_for_rounding_decides_nothing():
    assert claims.verdict({"low": 1.9e-18, "high": 0.0075}) == "cannot tell"      # a float's zero
    assert claims.verdict({"low": -0.003, "high": -1e-17}) == "cannot tell"
    assert claims.verdict({"low": 3.7e-4, "high": 0.01}) == "holds"               # 1/(46 x 58): a real one
    assert claims.shown(TABLE.assign(**{"95% CI low": 1.9e-18})).iloc[0]["95% interval (points)"] == \
        "0.00 to +0.50"


def test_favours_counts_the_point_estimates():
    assert claims.favours(TABLE) == "Euclid (1 of 3 point estimates favour cosine, 2 favour Euclid)"
    assert claims.favours(TABLE, "lfv") == "nothing (not tested)"


def test_chance_and_verdict_counts():
    assert claims.chance(TABLE) == {"comparisons": 4, "expected_by_chance": 0.1}
    assert claims.verdict_counts(TABLE) == {"holds": 1, "does not hold": 1, "cannot tell": 2,
                                            claims.NOT_TESTED: 1}
    assert claims.verdict_counts(TABLE, "variant")["cannot tell"] == 1


def test_summary_and_reading_say_each_claim_in_words():
    assert claims.summary(TABLE, "baseline") == "EResNet vs AlexNet: not tested (not trained here)"
    assert claims.summary(TABLE, "cosine").startswith("pki3, KI, cosine vs Euclid: -1.00 points (-2.50 to "
                                                      "+0.50), cannot tell; ")
    assert claims.summary(TABLE, "beta") == "not in this profile's table"
    sd = pd.DataFrame([{"dataset": "pki3", "method": "dcnn", "recipe": "cpu profile", "seeds": 3,
                        "sd": 0.0018},
                       {"dataset": "pki3", "method": "assign", "recipe": "7 epochs", "seeds": 3, "sd": 0.002}]
                      ).set_index(["dataset", "method"])
    r = claims.reading(TABLE, sd)
    assert r["sd_pki3_dcnn"] == "0.18 points (3 seeds)"
    assert r["sd_pki3_assign"] == "0.20 points (3 seeds, 7 epochs recipe)"
    assert r["sd_bioimlab_dcnn"].startswith("not measured")
    assert r["median_width"] == "2.50"           # interval widths 3, 2, 4 and 0.8 points
    assert (r["p_alexnet_dcnn_ki"], r["p_eresnet_dcnn_ki"]) == ("92.55", "91.93")
    assert (r["p_t2_mi"], r["p_t2_ki"]) == ("94.72", "93.79")
    assert r["variant_n"] == 1 and r["variant_cannot"] == 1
    assert r["variant_range"] == "from -0.00 to -0.00 points"
    assert r["cosine_favours"].startswith("Euclid")


def test_evidence_table_has_one_row_per_claim():
    e = claims.evidence_table(TABLE)
    assert list(e.index) == [claims.CLAIMS["cosine"], claims.CLAIMS["variant"], claims.CLAIMS["baseline"]]
    assert e.loc[claims.CLAIMS["variant"], "our notes"] == "heads"
    assert e.loc[claims.CLAIMS["baseline"], "our notes"] == ""       # not tested: its reason is in the table


def test_variant_rows_pair_u1c0_with_each_other_head_on_the_same_cells():
    u1c0 = pd.Series([1.0, 1.0, 0.5], index=["a", "b", "c"])
    u0c0 = pd.Series([1.0, 0.5, 0.5], index=["b", "a", "c"])        # another cell order: paired by cell
    rows = claims.variant_rows({"u1c0": u1c0, "u0c0": u0c0}, "mi", claims.evidence())
    assert len(rows) == 1 and rows[0]["compared"] == "u1c0 vs u0c0"
    assert rows[0]["difference"] == pytest.approx(0.5 / 3)            # cell a: 1.0 - 0.5
    untested = claims.variant_rows({}, "mi", claims.evidence())
    assert len(untested) == 1 and untested[0]["verdict"] == claims.NOT_TESTED


@pytest.fixture
def runs(tmp_path):
    """The regression fixture's runs, with a copy of its pki3 run as an AlexNet run (4 training minutes)."""
    shutil.copytree(config.project_root() / "tests/regression/fixture/runs", tmp_path / "runs")
    pki3 = tmp_path / "runs" / "smoke" / "pki3"
    shutil.copytree(pki3 / "eresnet-u1c0", pki3 / "alexnet")
    (pki3 / "alexnet" / "done.json").write_text(json.dumps({"train_s": 240.0}))
    cfg = config.load("tests/regression/regress.yaml", runs_dir=str(tmp_path / "runs"),
                      models={"pki3": ["eresnet-u1c0", "alexnet"], "bioimlab": ["eresnet-u1c0"]})
    return cfg, pki3


def test_baseline_rows_say_why_they_are_not_tested(runs):
    cfg, _ = runs
    rows = claims.baseline_rows(cfg, None)
    assert [r["compared"] for r in rows] == ["EResNet vs AlexNet", "EResNet vs Vgg16", "EResNet vs ResNet50"]
    assert all(r["verdict"] == claims.NOT_TESTED for r in rows)
    assert "baselines' budget" in rows[0]["note"] and "not trained on this machine" in rows[0]["note"]
    assert rows[1]["note"] == "Vgg16 is not trained in the smoke profile"


def test_baseline_rows_compare_the_equal_budget_eresnet_on_the_test_cells(runs):
    cfg, pki3 = runs
    rows = claims.baseline_rows(cfg, Run(pki3 / "eresnet-u1c0"))      # the same network: no difference
    alexnet = rows[0]
    assert alexnet["difference"] == 0.0 and alexnet["verdict"] == "cannot tell"
    assert alexnet["data"] == "pki3, KI, DCNN, test cells, equal budget"
    assert alexnet["cells"] == len(np.unique(Run(pki3 / "alexnet").features("test", "ki")["cells"]))


def test_equal_budget_table_reads_the_experiment_row_where_the_run_is_absent(runs):
    cfg, _ = runs
    exp = pd.DataFrame([{"experiment": baselines.EQUAL_BUDGET, "dataset": "pki3", "epochs": 2.1,
                         "train_min": 2.5, "val_ki_dcnn": 0.9, "val_ki_assign": 0.95}])
    t = baselines.equal_budget_table(cfg, exp)
    assert list(t.index) == ["eresnet-u1c0", "alexnet", "vgg16", "resnet50"]
    assert t.loc["eresnet-u1c0", "val KI DCNN"] == 0.9 and t.loc["eresnet-u1c0", "train min"] == 2.5
    assert "experiments table" in t.loc["eresnet-u1c0", "source"]
    assert t.loc["alexnet", "train min"] == 4.0 and 0 <= t.loc["alexnet", "val KI DCNN"] <= 1
    assert t.loc["vgg16", "source"] == "not trained" and np.isnan(t.loc["vgg16", "val KI DCNN"])
    assert baselines.equal_budget_table(cfg, exp.iloc[:0]).loc["eresnet-u1c0", "source"].endswith("not run")


def test_lr_table_shows_each_rate_tried_and_the_profiles():
    cfg = config.load("configs/cpu.yaml")
    exp = pd.DataFrame([{"experiment": "pki3-alexnet-lr0.05", "val_ki_dcnn": 0.3}])
    t = baselines.lr_table(cfg, exp)
    assert list(t.index) == ["alexnet", "resnet50"]
    assert [c for c in t.columns if c != "profile's rate"] == [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    assert t.loc["alexnet", 0.05] == 0.3
    assert np.isnan(t.loc["alexnet", 0.01]) and np.isnan(t.loc["resnet50", 0.05])
    assert t.loc["alexnet", "profile's rate"] == cfg.lr_for("alexnet", "pki3")


# --- chromo.book.diagrams: Fig. 5's legend ----------------------------------------------------------------

def test_fig5s_legend_lies_below_every_panel():
    recs = pd.DataFrame([{"dataset": d, "query": q, "model": m, "method": me, "distance": None,
                          "accuracy_mean_cell": 0.95}
                         for d, qs in (("pki3", ("ki", "mi")), ("bioimlab", ("mi",))) for q in qs
                         for m in (("eresnet-u1c0", "alexnet", "resnet50") if d == "pki3"
                                   else ("eresnet-u1c0",))
                         for me in ("dcnn", "assign")])
    fig = diagrams.methods_by_model(recs)
    fig.canvas.draw()
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    legend = fig.legends[0].get_window_extent().transformed(fig.transFigure.inverted())
    assert legend.y1 <= min(ax.get_position().y0 for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["eresnet-u1c0", "alexnet", "resnet50"]
    bio = fig.axes[2]                                                       # one colour per model everywhere
    assert bio.get_title() == "bioimlab, MI"
    assert bio.patches[0].get_facecolor() == fig.axes[0].patches[0].get_facecolor()
