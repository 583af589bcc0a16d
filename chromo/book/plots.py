"""Every figure, one function each; each returns a matplotlib Figure (paper figure numbers noted)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from chromo import CLASSES, class_name


def montage(images, titles=None, ncols: int = 12, size: float = 1.0, title: str | None = None, invert=True):
    """Images in a grid of `ncols` columns, each panel `size` inches, titled."""
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    return _grid(images, titles, nrows, ncols, (ncols * size, nrows * size * 1.15), 7, title, invert)


def _grid(images, titles, nrows: int, ncols: int, figsize, fontsize: int, title, invert: bool):
    """The grid montage and chromosome_grid draw: one image per panel, bright-on-dark shown dark-on-light."""
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            img = np.asarray(images[i])
            ax.imshow(255 - img if invert else img, cmap="gray", vmin=0, vmax=255)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=fontsize)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_counts(manifest: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(9, 3))
    c = manifest["label"].value_counts().sort_index()
    ax.bar([class_name(k) for k in c.index], c.values, color="tab:blue")
    ax.set(xlabel="class", ylabel="images", title=f"{manifest['dataset'].iloc[0]}: images per class")
    fig.tight_layout()
    return fig


def size_by_class(manifest: pd.DataFrame, length: np.ndarray, unit: str = "source px"):
    """Box plot of chromosome length per class (`length` per manifest row, data.canvas.object_lengths)."""
    fig, ax = plt.subplots(figsize=(9, 3))
    df = manifest.assign(cls=manifest["label"].map(class_name), length=np.asarray(length))
    sns.boxplot(data=df, x="cls", y="length", order=[class_name(k) for k in CLASSES], ax=ax, fliersize=1)
    ax.set(xlabel="class", ylabel=f"chromosome length ({unit})", ylim=(0, None),
           title=f"{manifest['dataset'].iloc[0]}: chromosome length per class, measured on the chromosome")
    fig.tight_layout()
    return fig


def learning_curves(log: pd.DataFrame, title: str = ""):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].plot(log["epoch"], log["loss_softmax"], "o-", label="softmax loss (eq. 1)")
    axes[0].plot(log["epoch"], log["loss_center"], "s-", label="center loss (eq. 2)")
    axes[0].set(xlabel="epoch", ylabel="loss", yscale="log")
    axes[0].legend()
    axes[1].plot(log["epoch"], log["train_acc"], "o-", label="train")
    axes[1].plot(log["epoch"], log["val_acc"], "s-", label="validation")
    axes[1].set(xlabel="epoch", ylabel="accuracy (DCNN)", ylim=(0, 1))
    axes[1].legend()
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_projection(features, labels, lfv=None, title: str = ""):
    """2-D PCA of features, coloured by class, LFVs as black crosses."""
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=0).fit(features)
    p = pca.transform(features)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    palette = sns.color_palette("tab20", 20) + sns.color_palette("dark", 4)   # 24 distinct classes
    labels = np.asarray(labels)
    for k in CLASSES:
        sel = labels == k
        if sel.any():
            ax.scatter(p[sel, 0], p[sel, 1], color=palette[k - 1], s=4, alpha=0.6, label=class_name(k))
    if lfv is not None:
        ok = np.isfinite(lfv).all(1)
        q = pca.transform(lfv[ok])
        ax.scatter(q[:, 0], q[:, 1], marker="x", c="k", s=40)
        for k, (x, y) in zip(np.flatnonzero(ok) + 1, q):
            ax.annotate(class_name(k), (x, y), fontsize=7)
    ax.legend(title="class", fontsize=6, title_fontsize=7, markerscale=3, ncol=2, loc="center left",
              bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set(title=title or "features (PCA) and label feature vectors (x)", xlabel="PC 1", ylabel="PC 2")
    fig.tight_layout()
    return fig


def line(df: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", ylabel: str | None = None,
         min_span: float | None = None):
    """A line per hue; with min_span, the y-axis spans at least that much (so that a difference of a few
    tenths of a point does not fill the figure)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.lineplot(data=df, x=x, y=y, hue=hue, marker="o", ax=ax)
    ax.set(title=title, ylabel=ylabel or y)
    if min_span:
        lo, hi = df[y].min(), df[y].max()
        if hi - lo < min_span:
            mid = (lo + hi) / 2
            ax.set_ylim(mid - min_span / 2, mid + min_span / 2)
    fig.tight_layout()
    return fig


def per_cell_differences(table: pd.DataFrame, title: str = ""):
    """Paired per-cell differences against the first column (paper Figs 9, 10 compare methods per cell).
    table: cell x method of per-cell accuracies (eq. 8). One row of dots per other method, one dot per cell
    (in points), with the mean and its bootstrap 95% interval over cells; a cell missing (NaN) in a column is
    left out of that column's row."""
    from chromo.evaluate import paired_difference

    ref = table.columns[0]
    others = list(table.columns[1:])
    fig, ax = plt.subplots(figsize=(7.5, 0.7 * len(others) + 1.6))
    rng = np.random.default_rng(0)
    for i, col in enumerate(others):
        pair = table[[ref, col]].dropna()
        d = 100 * (pair[col] - pair[ref]).to_numpy()
        s = paired_difference(pair[ref], pair[col])
        ax.scatter(d, i + rng.uniform(-0.15, 0.15, len(d)), s=10, alpha=0.5, color="tab:blue")
        ax.errorbar(100 * s["mean"], i,
                    xerr=[[100 * (s["mean"] - s["low"])], [100 * (s["high"] - s["mean"])]],
                    fmt="D", color="k", capsize=4)
        ax.annotate(f"mean {100 * s['mean']:+.2f} [{100 * s['low']:+.2f}, {100 * s['high']:+.2f}]; "
                    f"{s['better']} better, {s['worse']} worse of {s['cells']}", (0.01, i + 0.3),
                    xycoords=("axes fraction", "data"), fontsize=7)
    ax.axvline(0, color="0.4", lw=1)
    ax.set_yticks(range(len(others)), others)
    ax.set_ylim(-0.6, len(others) - 0.2)
    ax.set(xlabel=f"per-cell accuracy minus '{ref}' (points; dots: cells, diamond: mean, 95% bootstrap CI)",
           title=title)
    fig.tight_layout()
    return fig


def distance_histograms(dmin_by_metric: dict, beta_line: float | None = None, title: str = ""):
    """Histogram of one cell's minimal distances for each base distance (paper Fig. 11)."""
    fig, axes = plt.subplots(1, len(dmin_by_metric), figsize=(5 * len(dmin_by_metric), 3))
    for ax, (metric, d) in zip(np.atleast_1d(axes), dmin_by_metric.items()):
        ax.hist(d, bins=20, color="tab:blue")
        if beta_line is not None:
            split = np.sort(d)[min(len(d) - 1, int(beta_line) - 1)]
            ax.axvline(split, color="r", ls="--", label="beta split")
            ax.legend()
        ax.set(title=f"{metric}", xlabel="minimal distance to an LFV", ylabel="chromosomes")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(cm: pd.DataFrame, title: str = ""):
    """Row-normalised confusion matrix (rows: true class); the diagonal greyed out so the errors show, each
    off-diagonal count written in its cell."""
    counts = cm.to_numpy()
    rate = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    off = rate.copy()
    np.fill_diagonal(off, np.nan)
    fig, ax = plt.subplots(figsize=(8, 7))
    vmax = max(np.nanmax(off), 0.01) if np.isfinite(off).any() else 0.01
    sns.heatmap(pd.DataFrame(off, index=cm.index, columns=cm.columns), ax=ax, cmap="Reds", vmin=0, vmax=vmax,
                square=True, linewidths=0.3, linecolor="0.9",
                cbar_kws={"label": "share of the true class", "shrink": 0.7})
    n = len(cm)
    for i in range(n):
        ax.add_patch(Rectangle((i, i), 1, 1, color="0.85"))
        ax.text(i + 0.5, i + 0.5, f"{rate[i, i]:.0%}" if counts[i].sum() else "", ha="center", va="center",
                fontsize=5, color="0.35")
        for j in range(n):
            if i != j and counts[i, j]:
                ax.text(j + 0.5, i + 0.5, str(counts[i, j]), ha="center", va="center", fontsize=6,
                        color="w" if off[i, j] > 0.6 * vmax else "k")
    ax.tick_params(labelsize=7)
    ax.set(xlabel="predicted class", ylabel="true class",
           title=title + "\n(colour: errors as a share of the true class; numbers: counts; "
                         "grey: correct share)")
    fig.tight_layout()
    return fig


def failure_gallery(wrong_images, wrong_titles, true_examples: list, pred_examples: list, title: str = "",
                    size: float = 1.2):
    """Each misclassified chromosome (left), beside examples of its true class and of the class it was taken
    for (paper Figs 6, 7); the columns are headed; `size`: inches per column."""
    n = len(wrong_images)
    kt = max((len(e) for e in true_examples), default=0)
    kp = max((len(e) for e in pred_examples), default=0)
    ncol = 1 + kt + kp
    fig, axes = plt.subplots(max(1, n), ncol, figsize=(size * ncol, 1.25 * size * max(1, n) + 0.7),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    show = lambda ax, img: ax.imshow(255 - np.asarray(img), cmap="gray", vmin=0, vmax=255)  # noqa: E731
    for i in range(n):
        show(axes[i, 0], wrong_images[i])
        axes[i, 0].set_title(wrong_titles[i], fontsize=7, color="r")
        for j, img in enumerate(true_examples[i]):
            show(axes[i, 1 + j], img)
        for j, img in enumerate(pred_examples[i]):
            show(axes[i, 1 + kt + j], img)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.8 / fig.get_figheight()), h_pad=1.2)
    heads = [(0, 0, "query\n(true -> predicted)"), (1, kt, "examples of\nthe true class"),
             (1 + kt, kt + kp, "examples of the\npredicted class")]
    for first, last, text in heads:    # centred over the columns it heads
        if last >= first:
            a, b = axes[0, first].get_position(), axes[0, last].get_position()
            fig.text((a.x0 + b.x1) / 2, a.y1 + 0.25 / fig.get_figheight(), text, ha="center", va="bottom",
                     fontsize=8, weight="bold")
    return fig


def angle_histogram(angles, title: str = ""):
    """Distribution of the orientation angles applied by the data layer (degrees, -90..90)."""
    a = np.asarray(angles, float)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.hist(a, bins=np.arange(-90, 91, 5), color="#4c72b0")
    ax.set_xlabel("rotation applied (degrees; 0 = left as it was)")
    ax.set_ylabel("images")
    ax.set_xlim(-90, 90)
    ax.set_title(title or f"{(np.abs(a) > 0).mean():.0%} of {len(a)} images rotated")
    fig.tight_layout()
    return fig


def claims_forest(table: pd.DataFrame, title: str = ""):
    """One row per (claim, data): the paired per-cell difference 'claimed better minus claimed worse' (points)
    with its bootstrap 95% interval; right of zero supports the claim. One panel per group of claims (the
    methods, the baselines, the Extended Block variants), each on its own axis."""
    t = table.dropna(subset=["difference"])
    groups = [(g, t[t["group"] == g].reset_index(drop=True)) for g in ("method", "baseline", "variant")
              if (t["group"] == g).any()]
    colour = {"holds": "tab:green", "does not hold": "tab:red"}
    heights = [0.34 * len(g) + 0.9 for _, g in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (name, g) in zip(axes[:, 0], groups):
        for i, r in g.iterrows():
            ax.errorbar(100 * r["difference"], i, xerr=[[100 * (r["difference"] - r["95% CI low"])],
                                                        [100 * (r["95% CI high"] - r["difference"])]],
                        fmt="o", color=colour.get(r["verdict"], "0.45"), capsize=3)
        ax.axvline(0, color="0.3", lw=1)
        ax.set_yticks(range(len(g)), [f"{r['compared']}  ({r['data']})" for _, r in g.iterrows()], fontsize=7)
        ax.invert_yaxis()
        ax.set_title({"method": "the method's claims", "baseline": "EResNet against the baselines",
                      "variant": "u1c0 against the other Extended Block variants"}[name], fontsize=9)
    axes[-1, 0].set_xlabel("per-cell accuracy, claimed better minus claimed worse (points; mean, 95% "
                           "bootstrap interval over cells)")
    fig.suptitle(title or "green: holds, red: does not hold, grey: cannot tell", fontsize=9)
    fig.tight_layout()
    return fig

# Fig. 10's curves, as the paper draws them: (a) the two rounds, (b) the second round's head and tail
_FIG10_STYLE = {("first", "euclid"): ("first_euclid", "tab:green", "o"),
                ("first", "cosine"): ("first_cosine", "tab:blue", "*"),
                ("second", "euclid"): ("second_euclid", "tab:purple", "x"),
                ("second", "cosine"): ("second_cosine", "goldenrod", "D"),
                ("second, head", "euclid"): ("head_euclid", "tab:olive", "s"),
                ("second, head", "cosine"): ("head_cosine", "tab:orange", "^"),
                ("second, tail", "euclid"): ("2tail-Hausdorff_euclid", "tab:cyan", "v"),
                ("second, tail", "cosine"): ("2tail-Hausdorff_cosine", "tab:red", "P")}


def lrd_rounds_per_cell(rounds: pd.DataFrame, title: str = ""):
    """Paper Fig. 10 per cell: (a) d_first and d_second, (b) d_second's head and tail, each with the cosine
    and the Euclidean base. rounds: evaluate.lrd_rounds (cells x (metric, round)); the cells on the x axis
    in the order of their cosine first-round accuracy, each curve's mean in the legend."""
    r = rounds.sort_values(("cosine", "first"), kind="stable")
    x = np.arange(1, len(r) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    panels = {"(a) d_first and d_second": ("first", "second"), "(b) d_second: head and tail": ("second, head",
                                                                                              "second, tail")}
    for ax, (name, parts) in zip(axes, panels.items()):
        for part in parts:
            for metric in ("euclid", "cosine"):
                label, colour, marker = _FIG10_STYLE[part, metric]
                y = r[(metric, part)].to_numpy(float)
                ax.plot(x, y, marker=marker, color=colour, ms=4, lw=1, alpha=0.85,
                        label=f"{label} (mean {np.nanmean(y):.4f})")
        ax.set(title=name, xlabel="cells, by cosine first-round accuracy", ylim=(-0.02, 1.02))
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("per-cell accuracy (eq. 8)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def best_beta_strip(best: dict, paper: dict, mark: int = 40, title: str = ""):
    """Paper Fig. 12(a) beside ours on one beta axis. best: label -> evaluate.best_beta table; each cell a
    thin line from its lowest to its highest best beta (the betas between need not all tie) and a dot at
    the lowest, the cells stacked in a band in the order of their lowest best beta. paper: label -> the
    paper's best beta per case (diamonds). A dashed line marks beta = `mark`."""
    rows = list(best) + list(paper)
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.4))
    for i, (name, b) in enumerate(best.items()):
        b = b.sort_values(["lowest", "highest"], kind="stable")
        y = i - 0.35 + 0.7 * (np.arange(len(b)) + 0.5) / max(len(b), 1)
        ax.hlines(y, b["lowest"], b["highest"], color="tab:blue", lw=0.8, alpha=0.35)
        ax.scatter(b["lowest"], y, s=8, color="tab:blue", zorder=3)
    for i, (name, values) in enumerate(paper.items(), start=len(best)):
        v = np.asarray(values, float)
        ax.scatter(v, i + np.linspace(-0.2, 0.2, len(v)), marker="D", s=28, color="tab:orange", zorder=3)
    ax.axvline(mark, color="0.3", ls="--", lw=1)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set(xlim=(0, 46), xlabel="best beta (ours: dot = a cell's lowest best beta, line = up to its highest; "
                                "the paper's: one diamond per case)",
           title=(title + "; " if title else "") + f"dashed line: beta = {mark}, the paper's")
    fig.tight_layout()
    return fig


def beta_curves(curves: dict, mark: int = 40, chosen: dict | None = None, title: str = "",
                ylabel: str = "accuracy after LRd", min_span: float = 0.05):
    """Accuracy against beta (paper Fig. 12(b), (c)), one line per label (curves: label -> Series indexed
    by beta); a dashed line at beta = `mark`, and for each label in `chosen` (label -> beta) a ring at
    the beta chosen. The y axis spans at least `min_span`."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for i, (name, c) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        ax.plot(c.index, c.to_numpy(float), marker=".", ms=4, lw=1.2, color=colour, label=name)
        if chosen and name in chosen:
            ax.scatter([chosen[name]], [c.loc[chosen[name]]], s=90, facecolors="none", edgecolors=colour,
                       lw=1.5)
    ax.axvline(mark, color="0.3", ls="--", lw=1)
    ax.annotate(f"beta = {mark}", (mark, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                textcoords="offset points", fontsize=8)
    lo = min(float(np.nanmin(c.to_numpy(float))) for c in curves.values())
    hi = max(float(np.nanmax(c.to_numpy(float))) for c in curves.values())
    if hi - lo < min_span:
        ax.set_ylim((lo + hi) / 2 - min_span / 2, (lo + hi) / 2 + min_span / 2)
    ax.set(xlabel="beta (head size, of 46)", ylabel=ylabel, title=title, xlim=(0, 46))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def common_crop(images, threshold: int = 0) -> tuple[slice, slice]:
    """The rows and columns that hold a pixel above `threshold` in any of `images` (same-sized canvases),
    as two slices: cropping every image to them keeps their common scale and their placement."""
    stack = np.stack([np.asarray(i) for i in images])
    rows = np.flatnonzero((stack > threshold).any(axis=(0, 2)))
    cols = np.flatnonzero((stack > threshold).any(axis=(0, 1)))
    if not len(rows):
        return slice(None), slice(None)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def chromosome_grid(images, titles=None, ncols: int = 8, height: float = 1.5, title: str | None = None,
                    invert: bool = True):
    """Chromosomes large enough to see: at most `ncols` per row (8), every image cropped to the common box
    of all of them (common_crop: one scale for all, relative size kept), each panel `height` inches tall and
    as wide as the crop's aspect ratio makes it."""
    images = [np.asarray(i) for i in images]
    rs, cs = common_crop(images)
    crops = [i[rs, cs] for i in images]
    n = len(crops)
    ncols = max(1, min(ncols, n))
    nrows = max(1, int(np.ceil(n / ncols)))
    h, w = crops[0].shape if n else (1, 1)
    width = max(height * w / h, 0.9)                       # room for a short title under a thin chromosome
    size = (ncols * width, nrows * (height + 0.3) + (0.4 if title else 0))
    return _grid(crops, titles, nrows, ncols, size, 9, title, invert)
