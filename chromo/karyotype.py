"""The karyotype of one cell (beyond the paper): chromosome counts, ISCN-style formulas (46,XX; 47,XY,+21;
45,X) and the optimal assignment of a cell's chromosomes to karyotype slots that yields them."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

from chromo import AUTOSOMES, CELL_SIZE, CLASSES, N_CLASSES, X, Y

NORMAL_FORMULAS = ("46,XX", "46,XY")
SEX_CHROMOSOMES = {"XX": (X, X), "XY": (X, Y)}
MAX_CELL = 2 * CELL_SIZE - 22  # 46 normal slots + one extra slot per class (24)


def normal_labels(sex: str = "XY") -> list[int]:
    """The labels of a normal cell: each autosome twice, then the sex chromosomes ('XX' or 'XY')."""
    return [k for k in AUTOSOMES for _ in (0, 1)] + list(SEX_CHROMOSOMES[sex])


def counts(labels: Iterable[int]) -> dict[int, int]:
    """Copies of each class 1..24 among a cell's labels."""
    c = Counter(int(k) for k in labels)
    return {k: c.get(k, 0) for k in CLASSES}


def formula(labels: Iterable[int]) -> str:
    """ISCN-style formula from a cell's labels: total, sex chromosomes, then autosome gains and losses
    in chromosome order, e.g. [..two of each autosome.., 21, X, Y] -> '47,XY,+21'."""
    n = counts(labels)
    total = sum(n.values())
    sex = "X" * n[X] + "Y" * n[Y]
    changes = []
    for k in AUTOSOMES:
        d = n[k] - 2
        changes += [f"+{k}"] * d if d > 0 else [f"-{k}"] * (-d)
    return ",".join([str(total), sex or "--"] + changes)


def is_normal(f: str) -> bool:
    return f in NORMAL_FORMULAS


def sex(f: str) -> str:
    """The sex-chromosome part of a formula: '47,XY,+21' -> 'XY'."""
    return f.split(",")[1]


def assign_karyotype(cost, extra_penalty: float = 4.0, missing_penalty: float = 4.0) -> dict:
    """Beyond the paper: the optimal assignment of a cell's chromosomes to karyotype slots.

    Slots: two per autosome and the sex slots of one hypothesis (XX: X, X; XY: X, Y), plus one extra
    slot per class costing `extra_penalty` more, while each normal slot left empty costs
    `missing_penalty`. `cost` [n, 24] is -log p (softmax) or an LFV distance. Both hypotheses are
    solved with scipy's linear_sum_assignment and the cheaper kept, so a 45- or 47-chromosome cell
    yields a formula such as 45,X or 47,XY,+21. Returns labels (1..24), formula, hypothesis, cost.
    """
    c = np.asarray(cost, dtype=float)
    n = len(c)
    if not 0 < n <= MAX_CELL:
        raise ValueError(f"a cell of {n} chromosomes cannot be assigned (1..{MAX_CELL})")
    c = np.where(np.isfinite(c), c, 1e6)
    best = None
    for hyp in SEX_CHROMOSOMES:
        normal = np.array(normal_labels(hyp))
        slots = np.concatenate([normal, np.arange(1, N_CLASSES + 1)])
        cm = c[:, slots - 1].copy()
        cm[:, :len(normal)] -= missing_penalty
        cm[:, len(normal):] += extra_penalty
        rows, cols = linear_sum_assignment(cm)
        total = float(cm[rows, cols].sum() + missing_penalty * len(normal))
        if best is None or total < best["cost"] - 1e-12:
            labels = np.empty(n, int)
            labels[rows] = slots[cols]
            best = {"labels": labels, "hypothesis": hyp, "cost": total}
    best["formula"] = formula(best["labels"])
    return best


# --- relative size (beyond the paper): a chromosome's area against the other chromosomes of its cell -----

def relative_size(areas, cells) -> np.ndarray:
    """log(area / median area of the chromosome's cell) [n]: the cell's condensation divides out (a long
    prometaphase cell and a short metaphase one rank their chromosomes alike); the median is that of the
    cell's own chromosomes, so a 45- or 47-chromosome cell barely moves it."""
    areas, cells = np.asarray(areas, float), np.asarray(cells)
    if len(areas) != len(cells):
        raise ValueError(f"{len(areas)} areas for {len(cells)} cell names")
    if (areas <= 0).any():
        raise ValueError(f"{int((areas <= 0).sum())} chromosome(s) of area 0: nothing above the threshold")
    out = np.empty(len(areas))
    for c in np.unique(cells):
        m = cells == c
        out[m] = np.log(areas[m] / np.median(areas[m]))
    return out


def fit_size_model(rel, labels) -> dict:
    """Per class 1..24, mean and standard deviation of the relative size (training chromosomes): the
    model of `size_cost`. A class without two chromosomes cannot be fitted and is refused."""
    rel, labels = np.asarray(rel, float), np.asarray(labels)
    few = [k for k in CLASSES if (labels == k).sum() < 2]
    if few:
        raise ValueError(f"classes {few}: fewer than 2 chromosomes, no size model")
    return {"mean": [float(rel[labels == k].mean()) for k in CLASSES],
            "sd": [max(float(rel[labels == k].std()), 1e-3) for k in CLASSES]}    # floored: no 0 in log


def size_cost(rel, model: dict, weight: float) -> np.ndarray:
    """weight * -log N(rel; mean_k, sd_k) up to a constant, [n, 24]: added to the assignment's -log p, so a
    chromosome far from a class's relative size costs more in that class's slots (0 when weight is 0)."""
    rel = np.asarray(rel, float)[:, None]                                    # [n, 1]
    mean, sd = np.asarray(model["mean"])[None], np.asarray(model["sd"])[None]   # [1, 24]
    return weight * (0.5 * ((rel - mean) / sd) ** 2 + np.log(sd))
