"""The paper's numbers beside ours: like to like, and a model the profile leaves out shown, not dropped."""
import pandas as pd

from chromo import paper


def _records(rows):
    return pd.DataFrame([{"dataset": d, "model": m, "method": me, "query": q, "distance": dist,
                          "accuracy_mean_cell": a} for d, m, me, q, dist, a in rows])


RECS = _records([
    ("pki3", "eresnet-u1c0", "lfv+lrd", "mi", "cosine", 0.91),
    ("pki3", "eresnet-u1c0", "lfv+lrd", "mi", "euclid", 0.10),      # another base: not the side-by-side's
    ("pki3", "eresnet-u1c0", "dcnn", "ki", None, 0.93),
    ("pki3", "alexnet", "dcnn", "ki", None, 0.40),
    ("bioimlab", "eresnet-u1c0", "dcnn", "mi", None, 0.88),
])


def test_the_papers_lfv_stands_beside_our_lfv_with_lrd_on_the_cosine_base():
    side = paper.side_by_side(RECS, "cpu")
    row = side[(side["method"] == "lfv+lrd") & (side["query"] == "MI") & (side["dataset"] == "pki3")].iloc[0]
    assert row["paper"] == "0.9472" and row["ours"] == 0.91
    assert row["our run"] == "cpu/pki3/eresnet-u1c0"
    # a DCNN row has no transcribed paper value: "—", never a guess
    dcnn = side[(side["method"] == "dcnn") & (side["model"] == "eresnet-u1c0") & (side["dataset"] == "pki3")].iloc[0]
    assert dcnn["paper"] == "—" and dcnn["ours"] == 0.93


def test_without_the_profiles_models_items_without_records_are_left_out():
    side = paper.side_by_side(RECS, "cpu")
    assert set(zip(side["dataset"], side["model"], side["method"], side["query"])) == {
        ("pki3", "eresnet-u1c0", "dcnn", "KI"), ("bioimlab", "eresnet-u1c0", "dcnn", "MI"),
        ("pki3", "eresnet-u1c0", "lfv+lrd", "MI"), ("pki3", "alexnet", "dcnn", "KI")}
    assert len(side) == 4


def test_a_table1_model_the_profile_does_not_train_gets_a_not_trained_row():
    models = {"pki3": ["eresnet-u1c0", "alexnet", "resnet50"], "bioimlab": ["eresnet-u1c0"]}
    assert paper.untrained(models) == [("pki3", "vgg16")]       # BioImLab trains no baseline: nothing missing
    side = paper.side_by_side(RECS, "cpu", models)
    vgg = side[side["model"] == "vgg16"]
    assert len(vgg) == 1
    assert vgg.iloc[0]["ours"] == "not trained" and vgg.iloc[0]["dataset"] == "pki3"
    assert "does not train vgg16" in vgg.iloc[0]["our run"]
    # ResNet-50 is trained but has no record here: it is not called untrained
    assert "resnet50" not in set(side["model"])


def test_a_profile_without_baselines_reports_nothing_missing():
    assert paper.untrained({"pki3": ["eresnet-u1c0"], "bioimlab": ["eresnet-u1c0"]}) == []
