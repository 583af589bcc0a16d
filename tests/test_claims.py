"""The claims table: verdicts from the paired interval, on the committed regression fixture."""
import pytest

from chromo import config
from chromo.book import claims


@pytest.mark.parametrize("low,high,expected", [(0.001, 0.02, "holds"), (-0.02, -0.001, "does not hold"),
                                               (-0.01, 0.01, "cannot tell"), (0.0, 0.01, "cannot tell")])
def test_verdict_reads_the_interval(low, high, expected):
    assert claims.verdict({"low": low, "high": high}) == expected


def test_claims_table_on_the_fixture_pairs_the_same_cells():
    cfg = config.load("tests/regression/regress.yaml")
    t = claims.claims_table(cfg)
    tested = t.dropna(subset=["difference"])
    assert {"holds", "does not hold", "cannot tell"} >= set(tested["verdict"])
    assert (tested["95% CI low"] <= tested["difference"]).all() and (tested["difference"]
                                                                     <= tested["95% CI high"]).all()
    # the difference is the mean of paired per-cell differences: equal to the difference of the two means
    assert (tested["difference"] - (tested["ours (better)"] - tested["ours (worse)"])).abs().max() < 1e-12
    assert set(tested["data"].str.split(",").str[0]) == {"pki3", "bioimlab"}
    assert t["claim"].str.contains("Extended Block variant").any()   # named even where it cannot be tested
    beta_rows = tested[tested["claim"].str.startswith("beta")]
    assert len(beta_rows) == 2 and beta_rows["compared"].str.contains("best on validation").all()


def test_baselines_are_judged_against_the_eresnet_at_their_budget_on_the_test_cells(tmp_path):
    """A baseline (here a copy of the fixture's pki3 run named alexnet) is compared with the EResNet trained
    on the baselines' budget (here another copy, its test logits made all right or all wrong), DCNN per
    cell on the test cells (the baselines' learning rates were chosen on the validation cells); without that
    EResNet, or for a baseline the profile does not train, the row stays, untested, and says why."""
    import shutil

    import numpy as np
    import pandas as pd

    from chromo.evaluate import mean_cell_accuracy
    from chromo.run import Run

    shutil.copytree(config.project_root() / "tests/regression/fixture/runs", tmp_path / "runs")
    pki3 = tmp_path / "runs" / "smoke" / "pki3"
    shutil.copytree(pki3 / "eresnet-u1c0", pki3 / "alexnet")
    equal = tmp_path / "equal-budget"
    shutil.copytree(pki3 / "eresnet-u1c0", equal)
    cfg = config.load("tests/regression/regress.yaml", runs_dir=str(tmp_path / "runs"),
                      models={"pki3": ["eresnet-u1c0", "alexnet"], "bioimlab": ["eresnet-u1c0"]})
    f = Run(pki3 / "alexnet").features("test", "ki")
    base = mean_cell_accuracy(f["logits"].argmax(1) + 1, f["labels"], f["cells"])
    assert 0 < base < 1

    def rows(equal_budget):
        return pd.DataFrame(claims.baseline_rows(cfg, equal_budget)).set_index("compared")

    def logits(right: bool) -> Run:
        z = dict(np.load(pki3 / "eresnet-u1c0" / "features_test_ki.npz"))
        z["logits"] = 10.0 * np.eye(24)[z["labels"] - 1 if right else z["labels"] % 24]   # right / wrong
        np.savez(equal / "features_test_ki.npz", **z)
        return Run(equal)

    untested = rows(None)
    assert list(untested.index) == ["EResNet vs AlexNet", "EResNet vs Vgg16", "EResNet vs ResNet50"]
    assert (untested["verdict"] == claims.NOT_TESTED).all() and untested["difference"].isna().all()
    assert "baselines' budget" in untested.loc["EResNet vs AlexNet", "note"]
    assert untested.loc["EResNet vs Vgg16", "note"] == "Vgg16 is not trained in the smoke profile"
    same = rows(Run(equal)).loc["EResNet vs AlexNet"]                    # the same logits: no difference
    assert same["ours (worse)"] == pytest.approx(base) and same["difference"] == 0
    assert same["verdict"] == "cannot tell" and same["note"] == "alexnet: 2 epochs; the EResNet: 2 epochs"
    better = rows(logits(right=True)).loc["EResNet vs AlexNet"]
    assert better["ours (better)"] == 1.0 and better["difference"] == pytest.approx(1 - base)
    assert better["verdict"] == "holds" and better["data"].endswith("test cells, equal budget")
    worse = rows(logits(right=False)).loc["EResNet vs AlexNet"]
    assert worse["ours (better)"] == 0.0 and worse["verdict"] == "does not hold"
    assert rows(logits(right=True)).loc["EResNet vs Vgg16", "verdict"] == claims.NOT_TESTED
    table = claims.claims_table(cfg, equal_budget=Run(equal))
    assert (table["key"] == "baseline").sum() == 3                        # once per baseline in the table
