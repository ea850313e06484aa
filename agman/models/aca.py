"""Attribute-guided channel attention, ACA (Sec. III-C3, Eq. 5-6, Fig. 3c).

q(a) = sigmoid(W_a' a) * (W_a' a); W_ACA = sigmoid(FC2(ReLU(FC1([q(a), f_s'])))) and
f_c = f_s' * W2 * W_ACA. The text says q(a) and f_s' are "combined by an element-wise addition"
but Eq. 6a (and the public code) concatenates them; this follows the equation. FC1 maps 2c' to
c' and FC2 c' to c' (public code's widths). W2, "a learned weight matrix" applied
element-wise, is a per-channel weight (initialised to 1); the public code's scalar would be
cancelled by the final L2 normalisation whenever CA is off.
"""

from __future__ import annotations

import torch
from torch import nn

from agman.models.attribute_embedding import AttributeEmbedding


class AttributeGuidedChannelAttention(nn.Module):
    def __init__(self, dim: int, n_attributes: int):
        super().__init__()
        self.attribute = AttributeEmbedding(n_attributes, dim)
        self.fc1 = nn.Linear(2 * dim, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.w2 = nn.Parameter(torch.ones(dim))

    def forward(self, f: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
        q = self.attribute(attr).to(f.dtype)  # (B, c') Eq. 5
        weights = torch.sigmoid(self.fc2(torch.relu(self.fc1(torch.cat([q, f], dim=1)))))  # (B, c') Eq. 6a
        return f * self.w2 * weights  # Eq. 6b


class NoChannelGuidance(nn.Module):
    """ACA switched off: the pooled feature passes unchanged."""

    def forward(self, f: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
        return f
