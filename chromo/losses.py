"""Softmax loss + alpha * center loss (paper eq. 1-3; Wen et al., ECCV 2016)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from chromo import distributed


class CenterLoss(nn.Module):
    """Center loss, eq. 2 in Wen et al.'s form: L_C = 1/2 * sum_i ||x_i - c_{y_i}||^2 (the paper's eq. 2 has
    no factor 1/2), divided by the batch size m as Wen et al.'s released code does, so alpha does not
    scale with the batch.

    The centres are not trained by the optimiser: ``update`` applies Wen's rule
        delta c_j = sum_i [y_i = j] (c_j - x_i) / (1 + sum_i [y_i = j]),   c_j <- c_j - rate * delta c_j.
    Labels here are 0-based class indices (class k in 1..24 is index k-1).
    """

    def __init__(self, n_classes: int, dim: int, rate: float = 0.5):
        super().__init__()
        self.rate = rate
        self.register_buffer("centers", torch.zeros(n_classes, dim))

    def forward(self, feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.centers[y]                                            # [B, D]
        return 0.5 * ((feats.float() - c) ** 2).sum() / feats.shape[0]

    @torch.no_grad()
    def update(self, feats: torch.Tensor, y: torch.Tensor) -> None:
        feats = feats.detach().float()
        diff = self.centers[y] - feats                                 # c_{y_i} - x_i, [B, D]
        delta = torch.zeros_like(self.centers).index_add_(0, y, diff)  # sum over i with y_i = j
        count = torch.bincount(y, minlength=self.centers.shape[0]).float().unsqueeze(1)
        # with several processes: sums over the global batch, so every process applies the same update and
        # the centres stay identical
        distributed.all_reduce_sum(delta)
        distributed.all_reduce_sum(count)
        self.centers -= self.rate * delta / (1 + count)


def joint_loss(logits, feats, y, center: CenterLoss, alpha: float = 0.5, label_smoothing: float = 0.0):
    """Eq. 3: L = L_S + alpha * L_C, with L_S the softmax (cross-entropy) loss of eq. 1 (with
    `label_smoothing` > 0 the targets are smoothed, a training-recipe choice that is not the paper's).
    Returns (total, softmax term, center term)."""
    ls = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    lc = center(feats, y)
    return ls + alpha * lc, ls, lc
