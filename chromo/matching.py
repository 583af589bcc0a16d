"""Label Feature Vectors (eq. 4), Hausdorff matching (eq. 5-7), DCNN / FVM / LFV and Label Redistribution
(section II-D). The karyotype assignment that goes beyond the paper is in chromo.karyotype.

Everything is vectorised with torch (on the GPU when present); the only Python loop is over the two
parts of Label Redistribution. Classes are 1..24 at the interface (23 = X, 24 = Y) and 0-based inside.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from chromo import CELL_SIZE, N_CLASSES
from chromo import device


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device())


def pairwise_distance(A, B, metric: str = "cosine") -> np.ndarray:
    """Base distance d(a, b) for every a in A [n, D] and b in B [m, D] -> [n, m].
    'euclid': eq. 6, ||a - b||_2.  'cosine': eq. 7 used as a distance, 1 - a.b / (||a|| ||b||)."""
    a, b = _t(A), _t(B)
    if metric == "euclid":
        d = torch.cdist(a, b)
    elif metric == "cosine":
        an = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
        bn = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
        d = 1 - an @ bn.T
    else:
        raise ValueError(f"unknown distance {metric!r}; choose cosine or euclid")
    return d.cpu().numpy()


def label_feature_vectors(features, labels, gamma: float = 1.0, n_classes: int = N_CLASSES):
    """Eq. 4: LFV_k = gamma * mean of the (validation) features of class k, k = 1..24.
    Returns (lfv [24, D], present [24] bool); a class with no example gives a NaN row, present False."""
    f, y = _t(features), torch.as_tensor(np.asarray(labels) - 1, device=_t(0).device)
    sums = torch.zeros(n_classes, f.shape[1], dtype=f.dtype, device=f.device).index_add_(0, y, f)
    count = torch.bincount(y, minlength=n_classes).to(f.dtype).unsqueeze(1)
    lfv = gamma * sums / count                     # NaN where count == 0
    return lfv.cpu().numpy(), (count.squeeze(1) > 0).cpu().numpy()


def hausdorff(A, B, metric: str = "cosine") -> float:
    """Eq. 5, the directed Hausdorff distance H(A, B) = max_{a in A} min_{b in B} d(a, b)."""
    return float(pairwise_distance(A, B, metric).min(axis=1).max())


def lfv_distances(features, lfv, present, metric: str = "cosine") -> np.ndarray:
    """d(query, LFV_k) for every query and class [n, 24]; absent classes are at +inf.
    For a single query, H({x}, {LFV_k}) of eq. 5 is exactly this distance."""
    d = pairwise_distance(features, np.nan_to_num(lfv), metric)
    d[:, ~np.asarray(present)] = np.inf
    return d


def predict_dcnn(logits) -> np.ndarray:
    """DCNN: the softmax argmax, classes 1..24."""
    return np.asarray(logits).argmax(1) + 1


def predict_lfv(distances) -> tuple[np.ndarray, np.ndarray]:
    """LFV: the label of the nearest label feature vector; returns (labels 1..24, minimal distances)."""
    d = np.asarray(distances)
    k = d.argmin(1)
    return k + 1, d[np.arange(len(d)), k]


def predict_fvm(query, gallery, gallery_labels, metric: str = "cosine", query_cells=None, gallery_cells=None):
    """FVM: the label of the nearest gallery image. With cells given, each query is matched only against
    gallery images of its own cell (the paper's pairing of MI queries with KI images of the same cell)."""
    d = pairwise_distance(query, gallery, metric)
    if query_cells is not None:
        d[np.asarray(query_cells)[:, None] != np.asarray(gallery_cells)[None, :]] = np.inf
    j = d.argmin(1)
    return np.asarray(gallery_labels)[j], d[np.arange(len(d)), j]


def head_size(beta: float, n: int) -> int:
    """beta counts head chromosomes of a 46-chromosome cell; other cells use the fraction beta / 46.
    A beta in (0, 1) is a fraction for every cell."""
    frac = beta if 0 < beta < 1 else beta / CELL_SIZE
    k = beta if (n == CELL_SIZE and beta >= 1) else round(frac * n)
    return int(min(n, max(0, k)))


def _rematch(d: np.ndarray, labels: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Optimal matching of rows of d [r, 24] to `capacity` slots of each label in `labels` (0-based)."""
    cost = np.repeat(d[:, labels], capacity, axis=1)
    cost = np.where(np.isfinite(cost), cost, 1e9)
    rows, cols = linear_sum_assignment(cost)
    return rows, labels[cols // capacity]


def label_redistribution(distances, beta: float = 40, capacity: int = 2) -> dict:
    """Label Redistribution (section II-D) for one cell, given d(chromosome, LFV_k) [n, 24].

    Round one: each chromosome takes its nearest LFV. Its minimal distances are sorted ascending and
    split at beta into a head (the beta closest) and a tail. Round two reruns the matching inside each
    part using only the labels that part predicted, each label taking at most `capacity` chromosomes
    (a homologous pair), solved optimally; a chromosome left without a slot keeps its first label.
    Returns first, second (labels 1..24), head (bool mask), order (ascending distance), min_distance.
    """
    d = np.asarray(distances, dtype=float)
    first, dmin = predict_lfv(d)
    order = np.argsort(dmin, kind="stable")
    n_head = head_size(beta, len(d))
    head = np.zeros(len(d), bool)
    head[order[:n_head]] = True
    second = first.copy()
    for part in (np.flatnonzero(head), np.flatnonzero(~head)):
        if len(part) == 0:
            continue
        allowed = np.unique(first[part] - 1)
        rows, lab = _rematch(d[part], allowed, capacity)
        second[part[rows]] = lab + 1
    return {"first": first, "second": second, "head": head, "order": order, "min_distance": dmin}


def neg_log_softmax(logits) -> np.ndarray:
    """-log p(k | x) [n, 24] from logits, in float64 (the cost of the karyotype assignment)."""
    return -torch.log_softmax(torch.as_tensor(np.asarray(logits), dtype=torch.float64), 1).numpy()


def softmax(logits) -> np.ndarray:
    """p(k | x) [n, 24] from logits, in float64."""
    return torch.softmax(torch.as_tensor(np.asarray(logits), dtype=torch.float64), 1).numpy()
