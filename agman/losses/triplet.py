"""Triplet ranking loss on cosine similarity (Sec. III-D, Eq. 8).

L_triplet = max(0, m + s(I, I_n) - s(I, I_p)) with s the cosine similarity. The printed Eq. 8c
swaps the two similarities; the intent (the positive more similar than the negative by the
margin m) is unambiguous, and this is it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def triplet_ranking_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                         margin: float) -> torch.Tensor:
    """Mean over the batch of max(0, m + cos(a, n) - cos(a, p)); inputs (B, D)."""
    s_pos = F.cosine_similarity(anchor, positive, dim=1)  # (B,)
    s_neg = F.cosine_similarity(anchor, negative, dim=1)  # (B,)
    return torch.clamp(margin + s_neg - s_pos, min=0).mean()
