"""Classification branch (Sec. III-B, Fig. 2, Eq. 7).

F2,3 (or F3 without the hierarchical feature) -> ResNet block #4 -> global average pool -> FC
to one logit per attribute TYPE. Images annotated with the same attribute type, whatever their
value, share a class: the branch perturbs object-centric features during fine-tuning.
"""

from __future__ import annotations

import torch
from torch import nn


class ClassificationBranch(nn.Module):
    def __init__(self, block4: nn.Sequential, n_attributes: int):
        super().__init__()
        self.block4 = block4
        last = block4[-1]
        channels = (getattr(last, "bn3", None) or last.bn2).num_features
        self.fc = nn.Linear(channels, n_attributes)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        pooled = self.block4(feature).mean(dim=(2, 3))  # (B, C4)
        return self.fc(pooled)  # (B, n_attributes)
