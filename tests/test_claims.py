"""The claims table: verdicts from the paired interval, on the committed regression fixture."""
import pytest

from chromo import claims, config


@pytest.mark.parametrize("low,high,expected", [(0.001, 0.02, "holds"), (-0.02, -0.001, "does not hold"),
                                               (-0.01, 0.01, "cannot tell"), (0.0, 0.01, "cannot tell")])
def test_verdict_reads_the_interval(low, high, expected):
    assert claims.verdict({"low": low, "high": high}) == expected


def test_claims_table_on_the_fixture_pairs_the_same_cells():
    cfg = config.load("tests/regression/regress.yaml")
    t = claims.claims_table(cfg)
    tested = t.dropna(subset=["difference"])
    assert {"holds", "does not hold", "cannot tell"} >= set(tested["verdict"])
    assert (tested["95% CI low"] <= tested["difference"]).all() and (tested["difference"] <= tested["95% CI high"]).all()
    # the difference is the mean of paired per-cell differences: equal to the difference of the two means
    assert (tested["difference"] - (tested["ours (better)"] - tested["ours (worse)"])).abs().max() < 1e-12
    assert set(tested["data"].str.split(",").str[0]) == {"pki3", "bioimlab"}
    assert t["claim"].str.contains("Extended Block variant").any()   # named even where it cannot be tested
    beta_rows = tested[tested["claim"].str.startswith("beta")]
    assert len(beta_rows) == 2 and beta_rows["compared"].str.contains("best on validation").all()


def test_baselines_get_their_verdict_from_the_equal_budget_comparison(tmp_path):
    """A baseline (here a copy of the fixture's pki3 run named alexnet, 4 training minutes against the
    EResNet's 15) is judged against the EResNet trained on its budget (the experiments table's row), on the
    validation cells; without that row the verdict stays "cannot tell (unequal budgets)"."""
    import json
    import shutil

    import pandas as pd

    from chromo import experiments
    from chromo.evaluate import dcnn_and_assignment
    from chromo.run import Run

    shutil.copytree(config.project_root() / "tests/regression/fixture/runs", tmp_path / "runs")
    pki3 = tmp_path / "runs" / "smoke" / "pki3"
    shutil.copytree(pki3 / "eresnet-u1c0", pki3 / "alexnet")
    for model, seconds in (("eresnet-u1c0", 900.0), ("alexnet", 240.0)):
        (pki3 / model / "done.json").write_text(json.dumps({"train_s": seconds}))
    cfg = config.load("tests/regression/regress.yaml", runs_dir=str(tmp_path / "runs"),
                      models={"pki3": ["eresnet-u1c0", "alexnet"], "bioimlab": ["eresnet-u1c0"]})
    f = Run(pki3 / "alexnet").features("val", "ki")
    base = dcnn_and_assignment(f["logits"], f["labels"], f["cells"], cfg.extra_penalty, cfg.missing_penalty)

    def exp(dcnn):
        return pd.DataFrame([{"variant": experiments.EQUAL_BUDGET, "dataset": "pki3", "epochs": 2.1, "train_min": 4.1,
                              "val_ki_dcnn": dcnn, "val_ki_assign": 0.5}])

    fair = claims.equal_budget_table(cfg, exp(base["dcnn"] + 0.1)).set_index("model")
    assert list(fair.index) == ["eresnet-u1c0", "alexnet"]
    assert fair.loc["alexnet", "val KI DCNN"] == base["dcnn"] and fair.loc["alexnet", "train min"] == 4.0
    assert fair.loc["eresnet-u1c0", "val KI DCNN"] == base["dcnn"] + 0.1 and fair.loc["eresnet-u1c0", "epochs"] == 2.1

    def baseline_row(experiments_table):
        t = claims.claims_table(cfg, experiments=experiments_table)
        return t[t["claim"] == "EResNet beats the baselines"].iloc[0]

    assert baseline_row(exp(base["dcnn"] + 0.1))["verdict"].startswith("holds (at an equal budget")
    assert baseline_row(exp(base["dcnn"] - 0.1))["verdict"].startswith("does not hold (at an equal budget")
    row = baseline_row(None)
    assert row["verdict"] == "cannot tell (unequal budgets)" and "4.0 min" in row["note"] and "15.0 min" in row["note"]
