"""Chromosome counts and ISCN-style karyotype formulas (46,XX; 47,XY,+21; 45,X)."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from chromo import X, Y

AUTOSOMES = range(1, 23)


def counts(labels: Iterable[int]) -> dict[int, int]:
    """Copies of each class 1..24 among a cell's labels."""
    c = Counter(int(k) for k in labels)
    return {k: c.get(k, 0) for k in range(1, 25)}


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
    return f in ("46,XX", "46,XY")



def sex(f: str) -> str:
    """The sex-chromosome part of a formula: '47,XY,+21' -> 'XY'."""
    return f.split(",")[1]
