"""The paper's method figures redrawn from this compendium: Fig. 2 (the pipeline), Fig. 3 (EResNet),
Fig. 4 (Label Redistribution, on a real cell of a run) and Fig. 5 (methods x models per query set, from a
profile's records). Boxes and arrows are drawn with matplotlib; the labels name the functions that do each
step, so a reader can go from the picture to the code.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyBboxPatch

from chromo.config import canvas_hw
from chromo.data.canvas import canvas_text

BOX = dict(boxstyle="round,pad=0.02,rounding_size=0.02", linewidth=1.0)
COLOURS = {"data": "#dbe9f6", "model": "#fde2c8", "match": "#d9f0d3", "out": "#eeeeee"}


def _box(ax, x, y, w, h, text, kind="model", size=8):
    ax.add_patch(FancyBboxPatch((x, y), w, h, facecolor=COLOURS[kind], edgecolor="0.3", **BOX))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, wrap=True)
    return (x, y, w, h)


def _arrow(ax, a, b, text=""):
    """An arrow from box a's right edge to box b's left edge (each box (x, y, w, h))."""
    (ax_, ay, aw, ah), (bx, by, _, bh) = a, b
    start, end = (ax_ + aw, ay + ah / 2), (bx, by + bh / 2)
    ax.annotate("", end, start, arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.0))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.012, text, ha="center", va="bottom",
                fontsize=6.5, color="0.25")


def _canvas(figsize):
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(-0.02, 1.01)
    ax.set_ylim(0, 1)
    ax.axis("off")
    return fig, ax


def pipeline(canvas=64):
    """Fig. 2: from the images of one cell to its labels, with the three ways of labelling (DCNN, FVM,
    LFV + LRd) and this compendium's karyotype assignment."""
    fig, ax = _canvas((11, 4.2))
    w, h = 0.15, 0.16
    img = _box(ax, 0.01, 0.42, w, h, "one cell's\nchromosome images\n(KI or MI)", "data")
    prep = _box(ax, 0.2, 0.42, w, h,
                f"polarity, upright,\none scale per set,\n{canvas_text(canvas)} canvas\n(chromo.data)",
                "data")
    net = _box(ax, 0.39, 0.42, w, h, "EResNet\n(chromo.models)\nfeature vector\nand softmax", "model")
    dcnn = _box(ax, 0.6, 0.78, 0.17, 0.13, "DCNN: argmax of\nthe softmax", "match")
    fvm = _box(ax, 0.6, 0.6, 0.17, 0.13, "FVM: nearest gallery\nimage (eq. 6, 7)", "match")
    lfv = _box(ax, 0.6, 0.35, 0.17, 0.18, "LFV: nearest label\nfeature vector\n(eq. 4; Hausdorff,\neq. 5-7)",
               "match")
    lrd = _box(ax, 0.82, 0.35, 0.17, 0.18, "LRd: head/tail\nat beta, rematch\n(section II-D)", "match")
    assign = _box(ax, 0.6, 0.07, 0.17, 0.16,
                  "karyotype assignment\n(beyond the paper:\n2 per autosome, XX/XY)",
                  "out")
    val = _box(ax, 0.39, 0.1, w, h, "validation images:\nmean feature\nper class x gamma", "data")
    _arrow(ax, img, prep)
    _arrow(ax, prep, net)
    for target in (dcnn, fvm, lfv):
        ax.annotate("", (target[0], target[1] + target[3] / 2), (net[0] + net[2], net[1] + net[3] / 2),
                    arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.0))
    ax.annotate("", (assign[0], assign[1] + assign[3] / 2), (net[0] + net[2], net[1] + 0.02),
                arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.0))
    ax.annotate("", (lfv[0] + 0.03, lfv[1]), (val[0] + val[2], val[1] + val[3] / 2),
                arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.0, connectionstyle="arc3,rad=0.2"))
    _arrow(ax, lfv, lrd)
    ax.set_title("Fig. 2 redrawn: the pipeline (boxes name this compendium's modules)", fontsize=10)
    return fig


def eresnet(backbone: str = "resnet50", feature_dim: int = 2048, hidden: int = 1024, units: int = 1,
            canvas=64):
    """Fig. 3: EResNet u<units>c0: the backbone, the Extended Block (FC, ReLU, Dropout) x units, FC to 24
    classes and softmax; the feature vector (c0) at the block's input feeds the center loss and the
    matching."""
    fig, ax = _canvas((10, 2.8))
    y, h = 0.35, 0.32
    x = _box(ax, 0.0, y, 0.1, h, "image\n1 x {} x {}".format(*canvas_hw(canvas)), "data")
    b = _box(ax, 0.13, y, 0.17, h, f"{backbone} backbone\n(stem, 4 stages,\nglobal average pool)", "model")
    _arrow(ax, x, b)
    prev, xpos = b, 0.34
    for u in range(units):
        unit = _box(ax, xpos, y, 0.14, h, f"unit {u + 1}\nFC {hidden}\nReLU, Dropout", "model")
        _arrow(ax, prev, unit, f"{feature_dim if u == 0 else hidden}")
        prev, xpos = unit, xpos + 0.17
    fc = _box(ax, xpos, y, 0.1, h, "FC 24", "model")
    _arrow(ax, prev, fc, f"{hidden if units else feature_dim}")
    sm = _box(ax, xpos + 0.13, y, 0.12, h, "softmax loss\n(eq. 1)", "out")
    _arrow(ax, fc, sm)
    fx = b[0] + b[2] + 0.015
    ax.annotate("feature vector (c0):\ncenter loss (eq. 2), LFV, FVM", (fx, y), (fx + 0.02, 0.08), fontsize=7,
                ha="left", arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.0))
    ax.text(xpos + 0.19, 0.08, "L = softmax + alpha x center (eq. 3)", fontsize=7, ha="center")
    ax.set_title(f"Fig. 3 redrawn: EResNet u{units}c0 (Extended Block in the middle)", fontsize=10)
    return fig


def label_redistribution_figure(lrd: dict, labels, beta: int, title: str = ""):
    """Fig. 4 on a real cell: the first-round minimal distances (nearest LFV) sorted ascending, split at
    beta into head and tail; each bar marked by whether round one and round two (the rematch inside its
    part, chromo.matching.label_redistribution) got the chromosome right."""
    labels = np.asarray(labels)
    order, dmin = lrd["order"], lrd["min_distance"]
    n_head = int(lrd["head"].sum())
    ok1, ok2 = lrd["first"][order] == labels[order], lrd["second"][order] == labels[order]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    x = np.arange(len(order))
    colour = np.where(ok2, "#4c9a2a", "#c0392b")
    ax.bar(x, dmin[order], color=colour, width=0.8)
    for i in np.flatnonzero(ok1 != ok2):     # what the rematch changed
        ax.text(i, dmin[order][i], "fixed" if ok2[i] else "broken", rotation=90, ha="center", va="bottom",
                fontsize=6)
    ax.axvline(n_head - 0.5, color="0.2", ls="--", lw=1)
    top = dmin.max() * 1.25
    ax.text((n_head - 1) / 2, top * 0.92, f"head: the {n_head} closest, rematched among the labels they took",
            ha="center", fontsize=7)
    ax.text(n_head + (len(order) - n_head) / 2, top * 0.92, "tail", ha="center", fontsize=7)
    ax.set_ylim(0, top)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_xlabel(f"chromosomes of the cell, by first-round distance (beta = {beta})")
    ax.set_ylabel("distance to nearest LFV")
    wrong1, wrong2 = int((~ok1).sum()), int((~ok2).sum())
    ax.set_title(title or f"Fig. 4 redrawn on a real cell: {wrong1} wrong after round one, {wrong2} after "
                          "LRd (green: right after LRd, red: wrong)", fontsize=9)
    fig.tight_layout()
    return fig


def methods_by_model(records: pd.DataFrame, distance: str = "cosine"):
    """Fig. 5: mean per-cell accuracy (eq. 9) of every method for every model, one panel per (data set,
    query set); FVM and LFV with the `distance` base. One legend for all panels, below them, clear of the
    bars."""
    r = records[records["distance"].isna() | (records["distance"] == distance)]
    cases = r[["dataset", "query"]].drop_duplicates().to_numpy()
    methods = [m for m in ("dcnn", "fvm", "lfv", "lfv+lrd", "assign") if m in set(r["method"])]
    models = list(dict.fromkeys(r["model"]))
    colours = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4))
    fig, axes = plt.subplots(1, len(cases), figsize=(4.2 * len(cases), 3.6), squeeze=False, sharey=True)
    for ax, (dataset, query) in zip(axes[0], cases):
        g = r[(r["dataset"] == dataset) & (r["query"] == query)]
        here = [m for m in models if m in set(g["model"])]
        width = 0.8 / len(here)
        for i, model in enumerate(here):
            v = g[g["model"] == model].set_index("method")["accuracy_mean_cell"].reindex(methods)
            ax.bar(np.arange(len(methods)) + (i - (len(here) - 1) / 2) * width, v, width, label=model,
                   color=colours[model])
        ax.set_xticks(np.arange(len(methods)), methods, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{dataset}, {query.upper()}", fontsize=9)
    axes[0][0].set_ylabel("mean per-cell accuracy")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[m]) for m in models]
    fig.legend(handles, models, loc="lower center", ncol=len(models), fontsize=8, frameon=False)
    fig.suptitle("Fig. 5 redrawn: methods x models per query set", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
