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
