"""The karyogram figure that `chromo classify` writes and the chapters draw: a cell's chromosomes laid out in
ISCN order, each under its label."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from chromo import CLASSES, class_name

# ISCN layout of a karyogram: rows of groups, sex chromosomes last
KARYOGRAM_ROWS = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18], [19, 20, 21, 22, 23,
                                                                                        24]]


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
