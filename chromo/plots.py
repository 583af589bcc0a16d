"""Every figure, one function each; each returns a matplotlib Figure (paper figure numbers noted)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Rectangle

from chromo import class_name

# ISCN layout of a karyogram: rows of groups, sex chromosomes last
KARYOGRAM_ROWS = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18], [19, 20, 21, 22, 23, 24]]
GROUPS = {**{k: "A" for k in (1, 2, 3)}, 4: "B", 5: "B", **{k: "C" for k in range(6, 13)},
          **{k: "D" for k in (13, 14, 15)}, **{k: "E" for k in (16, 17, 18)}, 19: "F", 20: "F",
          21: "G", 22: "G", 23: "sex", 24: "sex"}


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


def size_by_class(manifest: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(9, 3))
    df = manifest.assign(cls=manifest["label"].map(class_name), size=np.maximum(manifest["height"], manifest["width"]))
    sns.boxplot(data=df, x="cls", y="size", order=[class_name(k) for k in range(1, 25)], ax=ax, fliersize=1)
    ax.set(xlabel="class", ylabel="max(height, width) px", title=f"{manifest['dataset'].iloc[0]}: size per class")
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
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_projection(features, labels, lfv=None, title: str = ""):
    """2-D PCA of features, coloured by class, LFVs as black crosses."""
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=0).fit(features)
    p = pca.transform(features)
    fig, ax = plt.subplots(figsize=(6, 5))
    sc = ax.scatter(p[:, 0], p[:, 1], c=labels, cmap="tab20b", s=4, alpha=0.6)
    if lfv is not None:
        ok = np.isfinite(lfv).all(1)
        q = pca.transform(lfv[ok])
        ax.scatter(q[:, 0], q[:, 1], marker="x", c="k", s=40)
        for k, (x, y) in zip(np.flatnonzero(ok) + 1, q):
            ax.annotate(class_name(k), (x, y), fontsize=7)
    fig.colorbar(sc, ax=ax, label="class")
    ax.set(title=title or "features (PCA) and label feature vectors (x)", xlabel="PC 1", ylabel="PC 2")
    fig.tight_layout()
    return fig


def line(df: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", ylabel: str | None = None):
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.lineplot(data=df, x=x, y=y, hue=hue, marker="o", ax=ax)
    ax.set(title=title, ylabel=ylabel or y)
    fig.tight_layout()
    return fig


def per_cell_bars(table: pd.DataFrame, title: str = ""):
    """Per-cell accuracy for several methods side by side (paper Figs 9, 10). table: cell x method."""
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(table) + 2), 3.4))
    table.plot.bar(ax=ax, width=0.8)
    ax.set(ylabel="per-cell accuracy (eq. 8)", xlabel="test cell", ylim=(max(0, table.values.min() - 0.05), 1.0),
           title=title)
    ax.tick_params(axis="x", labelsize=6)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def distance_histograms(dmin_by_metric: dict, beta_line: float | None = None, title: str = ""):
    """Histogram of one cell's minimal distances for each base distance (paper Fig. 11)."""
    fig, axes = plt.subplots(1, len(dmin_by_metric), figsize=(5 * len(dmin_by_metric), 3))
    for ax, (m, d) in zip(np.atleast_1d(axes), dmin_by_metric.items()):
        ax.hist(d, bins=20, color="tab:blue")
        if beta_line is not None:
            ax.axvline(np.sort(d)[min(len(d) - 1, int(beta_line) - 1)], color="r", ls="--", label="beta split")
            ax.legend()
        ax.set(title=f"{m}", xlabel="minimal distance to an LFV", ylabel="chromosomes")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(cm: pd.DataFrame, title: str = ""):
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(cm, ax=ax, cmap="Blues", cbar=False, annot=False, square=True)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def failure_gallery(wrong_images, wrong_titles, examples: list, title: str = ""):
    """Each misclassified chromosome (left) beside examples of the class it was taken for (paper Figs 6, 7)."""
    n = len(wrong_images)
    k = max((len(e) for e in examples), default=0)
    fig, axes = plt.subplots(max(1, n), k + 1, figsize=(1.3 * (k + 1), 1.4 * max(1, n)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        axes[i, 0].imshow(255 - np.asarray(wrong_images[i]), cmap="gray", vmin=0, vmax=255)
        axes[i, 0].set_title(wrong_titles[i], fontsize=7, color="r")
        for j, img in enumerate(examples[i]):
            axes[i, j + 1].imshow(255 - np.asarray(img), cmap="gray", vmin=0, vmax=255)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def karyogram(images, labels, flagged=None, title: str = "", names=None):
    """Chromosomes laid out in ISCN order (groups A-G, homologues side by side, X and Y last), each labelled;
    flagged (low-confidence) ones outlined in red. `images` are bright-on-dark crops at one common scale."""
    labels = np.asarray(labels)
    flagged = np.zeros(len(labels), bool) if flagged is None else np.asarray(flagged)
    imgs = [np.asarray(a) for a in images]
    cell_h = max(a.shape[0] for a in imgs) + 14
    slot_w = [sum(a.shape[1] + 4 for a, l in zip(imgs, labels) if l == k) for k in range(1, 25)]
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
