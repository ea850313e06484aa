"""Attribute-guided spatial attention, ASA (Sec. III-C1, Eq. 1-3, Fig. 3a).

p(I) = tanh(Conv_{c'}(f(I))) is compared with the attribute embedding p(a) at every position;
a softmax over the h*w positions (scaled by sqrt(c')) gives the attention map, and
f_s = f * W1 * attention. The 1x1 conv Conv_{c'} lives in the AGA module: its output is both
the key here and the feature f that is attended (as in the public code), so f_s has c'
channels, matching ACA's c'-dimensional q(a). The paper calls W1 "a learned weight matrix"
applied element-wise; it is a per-channel weight here (a diagonal matrix, initialised to 1).
The public code uses one scalar, which the final L2 normalisation turns into a no-op whenever
no non-linear part follows (e.g. with SA, ACA and CA switched off).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agman.models.attribute_embedding import AttributeEmbedding


class AttributeGuidedSpatialAttention(nn.Module):
    def __init__(self, dim: int, n_attributes: int):
        super().__init__()
        self.attribute = AttributeEmbedding(n_attributes, dim)
        self.w1 = nn.Parameter(torch.ones(dim))
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, f: torch.Tensor, attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = f.shape
        key = torch.tanh(f)  # (B, c', h, w) p(I), Eq. 1
        query = self.attribute(attr)  # (B, c') p(a), Eq. 2
        logits = torch.einsum("bchw,bc->bhw", key, query.to(key.dtype)).reshape(b, h * w) * self.scale
        attention = logits.softmax(dim=1).reshape(b, 1, h, w)  # (B, 1, h, w), sums to 1
        return f * self.w1.view(1, c, 1, 1) * attention, attention  # Eq. 3


class UniformSpatialWeights(nn.Module):
    """ASA switched off: every position weighs 1/(h*w), so the later sum-pooling is a mean."""

    def forward(self, f: torch.Tensor, attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = f.shape
        attention = f.new_full((b, 1, h, w), 1.0 / (h * w))  # (B, 1, h, w)
        return f * attention, attention
