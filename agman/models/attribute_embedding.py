"""Attribute embedding with self-gating, Eq. 2 and Eq. 5 (Sec. III-C).

p(a) = sigmoid(W_a a) * (W_a a), where W_a is "an embedding layer and an FC layer" applied to
the one-hot attribute a. ASA and ACA each own one (W_a and W_a' in the paper); the public code
shares the embedding layer between them, which this project does not.
"""

from __future__ import annotations

import torch
from torch import nn


class AttributeEmbedding(nn.Module):
    def __init__(self, n_attributes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(n_attributes, dim)
        self.fc = nn.Linear(dim, dim)

    def forward(self, attr: torch.Tensor) -> torch.Tensor:
        z = self.fc(self.embed(attr))  # (B, c')
        return torch.sigmoid(z) * z
