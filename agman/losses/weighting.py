"""Dynamic loss weighting (Sec. III-D, Eq. 9) and its fixed alternative.

Eq. 9 as printed, L = 0.5 e^{w0} L_c + w0 + 0.5 e^{w1} L_t + w1, is unbounded below once w is
learned (dL/dw = 0.5 e^w L + 1 > 0 drives w to -inf). Its stable form is homoscedastic
uncertainty weighting (Kendall et al., CVPR 2018): L = sum_i 0.5 e^{-s_i} L_i + 0.5 s_i, with
s_i learned and initialised at 0, which starts at the paper's 0.5/0.5 weights. The public code
never optimises its weights (a constant ~1.359 (L_t + L_c) + 2); ``fixed`` with both weights set
to e^1/2 reproduces that.

With a single loss term (classification branch off) there is nothing to balance and the
triplet loss is used alone.
"""

from __future__ import annotations

import torch
from torch import nn

from agman.config import LossConfig


class UncertaintyWeighting(nn.Module):
    def __init__(self, terms: tuple[str, ...]):
        super().__init__()
        self.terms = terms
        self.log_vars = nn.Parameter(torch.zeros(len(terms)))  # s_i

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack([losses[t] for t in self.terms]).float()  # (T,)
        return (0.5 * torch.exp(-self.log_vars) * stacked + 0.5 * self.log_vars).sum()

    def weights(self) -> dict[str, float]:
        w = 0.5 * torch.exp(-self.log_vars.detach())
        return {t: float(w[i]) for i, t in enumerate(self.terms)}


class FixedWeighting(nn.Module):
    def __init__(self, weights: dict[str, float]):
        super().__init__()
        self._weights = dict(weights)

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(w * losses[t].float() for t, w in self._weights.items())

    def weights(self) -> dict[str, float]:
        return dict(self._weights)


def build_weighting(cfg: LossConfig, with_cls: bool) -> nn.Module:
    if not with_cls:
        return FixedWeighting({"triplet": 1.0})
    if cfg.weighting == "uncertainty":
        return UncertaintyWeighting(("cls", "triplet"))
    return FixedWeighting({"cls": cfg.fixed.cls, "triplet": cfg.fixed.triplet})
