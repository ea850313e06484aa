"""Spatial attention, SA (Sec. III-C2, Eq. 4, Fig. 3b).

W_SA = sigmoid(Conv([Avg_c(f_s), Max_c(f_s)])) and f_s' = f_s * W_SA. The paper text gives a
single 1x1 kernel; the public code uses a CBAM-style 7x7 kernel without bias. The kernel size
is ``model.aga.sa_kernel`` (default 1, the paper).
"""

from __future__ import annotations

import torch
from torch import nn


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size: int = 1):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"model.aga.sa_kernel: must be odd to keep the map size, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([f.mean(dim=1, keepdim=True), f.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, h, w)
        return f * torch.sigmoid(self.conv(pooled))  # (B, c', h, w)
