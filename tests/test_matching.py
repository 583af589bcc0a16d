"""Label Redistribution and karyotype assignment on constructed cells."""
import numpy as np

from chromo import karyotype, matching

NORMAL = [k for k in range(1, 23) for _ in (0, 1)]


def _cell(labels, near=0.1, far=1.0, step=1e-3):
    """Distances [n, 24]: each chromosome near its own class (slightly different per row), far from others."""
    d = np.full((len(labels), 24), far)
    for i, k in enumerate(labels):
        d[i, k - 1] = near + step * i
    return d


def test_lrd_repairs_a_swap_in_the_tail():
    labels = NORMAL + [23, 24]
    d = _cell(labels)
    i19, i20 = [i for i, k in enumerate(labels) if k == 19], [i for i, k in enumerate(labels) if k == 20]
    a, b = i19[0], i19[1]
    d[a, 20 - 1], d[a, 19 - 1] = 0.50, 0.60        # round one takes chromosome a (a 19) for a 20
    d[b, 19 - 1] = 0.45                            # the other 19 and both 20s are uncertain: tail
    for j in i20:
        d[j, 20 - 1] = 0.40
    r = matching.label_redistribution(d, beta=40)
    assert r["first"][a] == 20 and (r["first"] != labels).sum() == 1
    assert not r["head"][[a, b] + i20].any() and r["head"].sum() == 40
    assert (r["second"] == labels).all()           # 20 is over-full in the tail: a moves back to 19


def test_lrd_cannot_repair_three_consistent_errors_in_the_tail():
    labels = NORMAL + [23, 23]
    d = _cell(labels)
    i19, i20 = [i for i, k in enumerate(labels) if k == 19], [i for i, k in enumerate(labels) if k == 20]
    for i in i19:                                   # both 19s taken for 20s
        d[i, 20 - 1], d[i, 19 - 1] = 0.5, 0.6
    d[i20[0], 19 - 1], d[i20[0], 20 - 1] = 0.5, 0.6  # and one 20 for a 19
    r = matching.label_redistribution(d, beta=40)
    wrong_first = (r["first"] != labels).sum()
    assert wrong_first == 3
    assert (r["second"] != labels).sum() == 3      # no label over-full: nothing to redistribute


def test_lrd_beta_46_is_one_part():
    d = _cell(NORMAL + [23, 24])
    r = matching.label_redistribution(d, beta=46)
    assert r["head"].all() and (r["second"] == r["first"]).all()


def _nll(labels, conf=10.0):
    c = np.full((len(labels), 24), conf)
    c[np.arange(len(labels)), np.asarray(labels) - 1] = 0.0
    return c


def test_assignment_chooses_xy_and_xx():
    assert karyotype.assign_karyotype(_nll(NORMAL + [23, 24]))["formula"] == "46,XY"
    r = karyotype.assign_karyotype(_nll(NORMAL + [23, 23]))
    assert r["formula"] == "46,XX" and r["hypothesis"] == "XX"


def test_assignment_finds_trisomy_and_monosomy():
    assert karyotype.assign_karyotype(_nll(NORMAL + [21, 23, 24]))["formula"] == "47,XY,+21"
    assert karyotype.assign_karyotype(_nll(NORMAL + [23]))["formula"] == "45,X"


def test_assignment_repairs_a_double_claim():
    labels = NORMAL + [23, 24]
    c = _nll(labels)
    i = labels.index(5)
    c[i, 5 - 1], c[i, 4 - 1] = 1.0, 0.5             # a 5 slightly prefers 4: three claims on 4
    r = karyotype.assign_karyotype(c)
    assert (r["labels"] == labels).all() and r["formula"] == "46,XY"


def test_assignment_is_invariant_to_chromosome_order():
    rng = np.random.default_rng(0)
    labels = np.array(NORMAL + [21, 23, 24])
    c = _nll(labels) + rng.uniform(0, 0.5, (len(labels), 24))
    perm = rng.permutation(len(labels))
    a, b = karyotype.assign_karyotype(c), karyotype.assign_karyotype(c[perm])
    assert (a["labels"][perm] == b["labels"]).all() and a["formula"] == b["formula"] == "47,XY,+21"


def test_assignment_rejects_impossible_cells():
    import pytest

    with pytest.raises(ValueError, match="cannot be assigned"):
        karyotype.assign_karyotype(np.zeros((80, 24)))
