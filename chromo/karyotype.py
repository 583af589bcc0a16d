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
        total, labels = _solve(*_slot_problem(c, hyp, extra_penalty, missing_penalty))
        if best is None or total < best["cost"] - 1e-12:
            best = {"labels": labels, "hypothesis": hyp, "cost": total}
    best["formula"] = formula(best["labels"])
    return best


def _slot_problem(c: np.ndarray, hyp: str, extra_penalty: float, missing_penalty: float):
    """assign_karyotype's problem for one sex hypothesis: (slot labels [m], slot costs [n, m], constant)."""
    normal = np.array(normal_labels(hyp))
    slots = np.concatenate([normal, np.arange(1, N_CLASSES + 1)])
    cm = c[:, slots - 1].copy()
    cm[:, :len(normal)] -= missing_penalty
    cm[:, len(normal):] += extra_penalty
    return slots, cm, missing_penalty * len(normal)


def _solve(slots: np.ndarray, cm: np.ndarray, constant: float) -> tuple[float, np.ndarray]:
    """The optimal assignment of rows to slots: (its total cost, each row's slot label)."""
    rows, cols = linear_sum_assignment(cm)
    labels = np.empty(len(cm), int)
    labels[rows] = slots[cols]
    return float(cm[rows, cols].sum() + constant), labels


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


# --- min-marginals of the assignment (beyond the paper): how much the optimum pays to change one label ------

def assignment_margins(cost, extra_penalty: float = 4.0, missing_penalty: float = 4.0) -> dict:
    """Min-marginals of assign_karyotype's labels: how sure the cell's optimum is of each chromosome's label.

    For chromosome i with optimal label k_i, `margin[i]` >= 0 is what the cell's optimal assignment (both sex
    hypotheses, the same slots and penalties as assign_karyotype) costs more when i may not take k_i, and
    `runner_up[i]` the label i takes in that constrained optimum. Exact: per hypothesis, one re-solve per
    chromosome with i's slots of k_i removed (+inf, which linear_sum_assignment treats as no edge, unlike
    the 1e6 that stands for an infinite cost); a hypothesis whose own optimum already gives i another
    label needs no re-solve. A margin of 0 is a tie: another assignment is as cheap. Returns labels,
    hypothesis, formula and cost (those of assign_karyotype), margin [n] and runner_up [n] (1..24).
    """
    best = assign_karyotype(cost, extra_penalty, missing_penalty)
    c = np.where(np.isfinite(np.asarray(cost, dtype=float)), np.asarray(cost, dtype=float), 1e6)
    labels, n = best["labels"], len(c)
    constrained, runner_up = np.full(n, np.inf), np.zeros(n, int)
    for hyp in SEX_CHROMOSOMES:
        slots, cm, constant = _slot_problem(c, hyp, extra_penalty, missing_penalty)
        total, own = _solve(slots, cm, constant)
        for i in range(n):
            if own[i] != labels[i]:               # this hypothesis's optimum already avoids k_i
                t, lab = total, own
            else:
                forbidden = cm.copy()
                forbidden[i, slots == labels[i]] = np.inf
                t, lab = _solve(slots, forbidden, constant)
            if t < constrained[i] - 1e-12:
                constrained[i], runner_up[i] = t, lab[i]
    margin = np.maximum(constrained - best["cost"], 0.0)     # float round-off only: >= 0 by construction
    return {**best, "margin": margin, "runner_up": runner_up}
