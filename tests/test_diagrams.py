"""The paper's figures redrawn (chromo.book.diagrams): they draw, and Fig. 4 shows what LRd did to a cell."""
import matplotlib
import numpy as np
import pandas as pd

from chromo.book import diagrams
from chromo.matching import label_redistribution

matplotlib.use("Agg")


def test_the_method_diagrams_draw():
    for fig in (diagrams.pipeline(), diagrams.eresnet("resnet18", 512, 1024, 2)):
        texts = " ".join(t.get_text() for t in fig.axes[0].texts)
        assert fig.axes[0].patches and texts
    assert "unit 2" in " ".join(t.get_text() for t in diagrams.eresnet(units=2).axes[0].texts)


def test_fig4_marks_what_the_rematch_fixed():
    """Four chromosomes (true labels 1, 1, 2, 2). Round one gives the third label 1 (0.30 against 0.35 for
    label 2), so label 1 has three takers. All four are in the head (beta 0.99 of 4 rounds to 4), which
    rematches among the labels it took, {1, 2}, two slots each: the cheapest way moves the third chromosome
    to label 2, which fixes it."""
    d = np.full((4, 24), 9.0)
    d[:3, 0] = [0.1, 0.2, 0.3]          # distances to label 1
    d[2, 1], d[3, 1] = 0.35, 0.05       # ... and to label 2
    lrd = label_redistribution(d, beta=0.99)
    assert list(lrd["first"]) == [1, 1, 1, 2] and list(lrd["second"]) == [1, 1, 2, 2] and lrd["head"].all()
    fig = diagrams.label_redistribution_figure(lrd, np.array([1, 1, 2, 2]), beta=4)
    ax = fig.axes[0]
    assert [round(b.get_height(), 2) for b in ax.patches] == [0.05, 0.1, 0.2, 0.3]   # sorted ascending
    assert "1 wrong after round one, 0 after LRd" in ax.get_title()
    assert [t.get_text() for t in ax.texts].count("fixed") == 1


def test_fig5_has_a_panel_per_query_set_and_a_bar_per_model_and_method():
    recs = pd.DataFrame([{"dataset": "pki3", "query": q, "model": m, "method": me, "distance": dist,
                          "accuracy_mean_cell": 0.5}
                         for q in ("ki", "mi") for m in ("eresnet-u1c0", "alexnet")
                         for me, dist in (("dcnn", None), ("lfv", "cosine"), ("lfv", "euclid"))])
    fig = diagrams.methods_by_model(recs)
    # 2 models x 2 methods (cosine)
    assert len(fig.axes) == 2 and all(len(ax.patches) == 4 for ax in fig.axes)
