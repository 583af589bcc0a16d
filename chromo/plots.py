"""Every figure, one function each; each returns a matplotlib Figure (paper figure numbers noted)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from chromo import CLASSES, class_name

# ISCN layout of a karyogram: rows of groups, sex chromosomes last
KARYOGRAM_ROWS = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18], [19, 20, 21, 22, 23, 24]]

def montage(images, titles=None, ncols: int = 12, size: float = 1.0, title: str | None = None, invert=True):
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = np.asarray(images[i])
            ax.imshow(255 - img if invert else img, cmap="gray", vmin=0, vmax=255)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
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
    (in points), with the mean and its bootstrap 95% interval over cells."""
    from chromo.evaluate import paired_difference

    ref = table.columns[0]
    others = list(table.columns[1:])
    fig, ax = plt.subplots(figsize=(7.5, 0.7 * len(others) + 1.6))
    rng = np.random.default_rng(0)
    for i, col in enumerate(others):
        d = 100 * (table[col] - table[ref]).to_numpy()
        s = paired_difference(table[ref], table[col])
        ax.scatter(d, i + rng.uniform(-0.15, 0.15, len(d)), s=10, alpha=0.5, color="tab:blue")
        ax.errorbar(100 * s["mean"], i, xerr=[[100 * (s["mean"] - s["low"])], [100 * (s["high"] - s["mean"])]],
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
            ax.axvline(np.sort(d)[min(len(d) - 1, int(beta_line) - 1)], color="r", ls="--", label="beta split")
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
                square=True, linewidths=0.3, linecolor="0.9", cbar_kws={"label": "share of the true class", "shrink": 0.7})
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
           title=title + "\n(colour: errors as a share of the true class; numbers: counts; grey: correct share)")
    fig.tight_layout()
    return fig


def failure_gallery(wrong_images, wrong_titles, true_examples: list, pred_examples: list, title: str = ""):
    """Each misclassified chromosome (left), beside examples of its true class and of the class it was taken
    for (paper Figs 6, 7); the columns are headed."""
    n = len(wrong_images)
    kt = max((len(e) for e in true_examples), default=0)
    kp = max((len(e) for e in pred_examples), default=0)
    ncol = 1 + kt + kp
    fig, axes = plt.subplots(max(1, n), ncol, figsize=(1.2 * ncol, 1.5 * max(1, n) + 0.7), squeeze=False)
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
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()), h_pad=1.2)
    heads = [(0, 0, "query\n(true -> predicted)"), (1, kt, "examples of\nthe true class"),
             (1 + kt, kt + kp, "examples of the\npredicted class")]
    for first, last, text in heads:    # centred over the columns it heads
        if last >= first:
            a, b = axes[0, first].get_position(), axes[0, last].get_position()
            fig.text((a.x0 + b.x1) / 2, a.y1 + 0.25 / fig.get_figheight(), text, ha="center", va="bottom",
                     fontsize=8, weight="bold")
    return fig


def karyogram(images, labels, flagged=None, title: str = ""):
    """Chromosomes laid out in ISCN order (groups A-G, homologues side by side, X and Y last), each labelled;
    flagged (low-confidence) ones outlined in red. `images` are bright-on-dark crops at one common scale."""
    labels = np.asarray(labels)
    flagged = np.zeros(len(labels), bool) if flagged is None else np.asarray(flagged)
    imgs = [np.asarray(a) for a in images]
    cell_h = max(a.shape[0] for a in imgs) + 14
    slot_w = [sum(a.shape[1] + 4 for a, l in zip(imgs, labels) if l == k) for k in CLASSES]
    unit = max(max(slot_w), 2 * max(a.shape[1] for a in imgs) + 8) + 10
    width = unit * max(len(r) for r in KARYOGRAM_ROWS)
    height = cell_h * len(KARYOGRAM_ROWS)
    fig, ax = plt.subplots(figsize=(min(16, width / 40 + 1), min(12, height / 40 + 1)))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for r, row in enumerate(KARYOGRAM_ROWS):
        y_base = (r + 1) * cell_h - 14
        for c, k in enumerate(row):
            x = c * unit + (unit - slot_w[k - 1]) / 2
            for i in np.flatnonzero(labels == k):
                a = imgs[i]
                h, w = a.shape
                ax.imshow(255 - a, cmap="gray", vmin=0, vmax=255, extent=[x, x + w, y_base, y_base - h])
                if flagged[i]:
                    ax.add_patch(Rectangle((x - 1, y_base - h - 1), w + 2, h + 2, fill=False, ec="r", lw=1.2))
                x += w + 4
            ax.plot([c * unit + 6, (c + 1) * unit - 6], [y_base + 2] * 2, color="0.3", lw=0.8)
            ax.text((c + 0.5) * unit, y_base + 11, class_name(k), ha="center", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
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
    """One row per (claim, data): the paired per-cell difference 'claimed better minus claimed worse'
    (points) with its bootstrap 95% interval; right of zero supports the claim. Rows whose comparison is
    not fair (unequal budgets) are left out of the picture (they stay in the table)."""
    t = table.dropna(subset=["difference"])
    t = t[~t["verdict"].str.contains("unequal")].reset_index(drop=True)
    colour = {"holds": "tab:green", "does not hold": "tab:red"}
    fig, ax = plt.subplots(figsize=(10, 0.36 * len(t) + 1.3))
    for i, r in t.iterrows():
        ax.errorbar(100 * r["difference"], i, xerr=[[100 * (r["difference"] - r["95% CI low"])],
                                                    [100 * (r["95% CI high"] - r["difference"])]],
                    fmt="o", color=colour.get(r["verdict"], "0.45"), capsize=3)
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(range(len(t)), [f"{r['compared']}  ({r['data']})" for _, r in t.iterrows()], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="per-cell accuracy, claimed better minus claimed worse (points; mean and 95% bootstrap CI)",
           title=title or "the paper's claims on the test cells (green: holds, red: does not hold, grey: cannot tell)")
    fig.tight_layout()
    return fig
