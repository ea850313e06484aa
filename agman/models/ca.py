"""Channel attention, CA (Sec. III-C4, Fig. 3d).

"A simple dimensionality reduction, succeeded by an expansion operation" producing channel
attention: a squeeze-and-excitation gate on the pooled vector,
f_c' = f_c * sigmoid(FC_up(ReLU(FC_down(f_c)))). The reduction ratio is not given in the paper;
``model.aga.ca_reduction`` defaults to SE-Net's 16. The public code has no CA at all (it uses a
per-attribute mask over the embedding instead); this project implements the paper.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelAttention(nn.Module):
    def __init__(self, dim: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, dim // reduction)
        self.down = nn.Linear(dim, hidden)
        self.up = nn.Linear(hidden, dim)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f * torch.sigmoid(self.up(torch.relu(self.down(f))))  # (B, c')
