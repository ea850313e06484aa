"""Attribute-guided attention, AGA = ASA -> SA -> pooling -> ACA -> CA (Sec. III-C, Fig. 3).

A 1x1 conv (Conv_{c'} of Eq. 1) first maps the backbone feature to c' = ``model.embed_dim``
channels. Positions are then sum-pooled (public code) into a vector: with ASA's softmax
attention that is an attention-weighted average. The output is L2-normalised, so the cosine
similarity of Eq. 8 is a dot product.

Each switch in ``model.aga`` picks a module at build time (the part or a pass-through); forward
has no branches on the switches.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from agman.config import AGAConfig
from agman.models.aca import AttributeGuidedChannelAttention, NoChannelGuidance
from agman.models.asa import AttributeGuidedSpatialAttention, UniformSpatialWeights
from agman.models.ca import ChannelAttention
from agman.models.sa import SpatialAttention


class AGAOutput(NamedTuple):
    embedding: torch.Tensor  # (B, c') L2-normalised attribute-specific embedding
    attention: torch.Tensor  # (B, 1, h, w) ASA map (uniform when ASA is off), for Figure 7


class AttributeGuidedAttention(nn.Module):
    def __init__(self, in_channels: int, dim: int, n_attributes: int, cfg: AGAConfig):
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, dim, kernel_size=1)
        self.asa = AttributeGuidedSpatialAttention(dim, n_attributes) if cfg.asa else UniformSpatialWeights()
        self.sa = SpatialAttention(cfg.sa_kernel) if cfg.sa else nn.Identity()
        self.aca = AttributeGuidedChannelAttention(dim, n_attributes) if cfg.aca else NoChannelGuidance()
        self.ca = ChannelAttention(dim, cfg.ca_reduction) if cfg.ca else nn.Identity()

    def forward(self, feature: torch.Tensor, attr: torch.Tensor) -> AGAOutput:
        return self.attend(self.reduce(feature), attr)  # reduce: (B, C_in, h, w) -> (B, c', h, w)

    def attend(self, f: torch.Tensor, attr: torch.Tensor) -> AGAOutput:
        """Everything after the 1x1 conv: the part that depends on the attribute."""
        f_s, attention = self.asa(f, attr)  # (B, c', h, w), (B, 1, h, w)
        f_s = self.sa(f_s)  # (B, c', h, w)
        pooled = f_s.sum(dim=(2, 3))  # (B, c')
        f_c = self.ca(self.aca(pooled, attr))  # (B, c')
        return AGAOutput(F.normalize(f_c.float(), dim=1), attention)
