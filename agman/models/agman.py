"""AG-MAN: attribute-guided multi-level attention network (Sec. III, Fig. 1).

image -> multi-level backbone (F2, F3) -> hierarchical feature -> AGA -> embedding,
and F2,3 -> classification branch -> attribute-type logits (training only).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from agman.config import ModelConfig
from agman.models.aga import AttributeGuidedAttention
from agman.models.backbone import HierarchicalFeature, MultiLevelBackbone, SingleLevelFeature, load_resnet
from agman.models.classification import ClassificationBranch


class ModelOutput(NamedTuple):
    """What every registered model returns."""

    embedding: torch.Tensor  # (B, c') L2-normalised
    logits: torch.Tensor | None  # (B, n_attributes) attribute-type logits; None without the branch
    attention: torch.Tensor  # (B, 1, h, w) spatial attention map (uniform for a model without one)
    # () float32 term added to the training loss as it is (weights already applied), e.g. CSN's
    # norm regularisers; None for a model without one, AG-MAN included.
    penalty: torch.Tensor | None = None


class AGMAN(nn.Module):
    def __init__(self, cfg: ModelConfig, n_attributes: int):
        super().__init__()
        resnet = load_resnet(cfg.backbone, cfg.pretrained)
        self.backbone = MultiLevelBackbone(resnet)
        c2, c3 = self.backbone.f2_channels, self.backbone.f3_channels
        self.levels = HierarchicalFeature(c2, c3) if cfg.hierarchical else SingleLevelFeature(c3)
        self.aga = AttributeGuidedAttention(self.levels.out_channels, cfg.embed_dim, n_attributes, cfg.aga)
        # Without the classification loss, block #4 would receive no gradient: it is not built.
        self.classifier = ClassificationBranch(resnet.layer4, n_attributes) if cfg.cls_loss else None

    def forward(self, images: torch.Tensor, attr: torch.Tensor, with_logits: bool = False) -> ModelOutput:
        f2, f3 = self.backbone(images)  # (B, C2, H/8, W/8), (B, C3, H/16, W/16)
        attention_input, branch_input = self.levels(f2, f3)  # (B, C_in, h, w), (B, C3, h, w)
        out = self.aga(attention_input, attr)
        logits = self.classifier(branch_input) if with_logits and self.classifier is not None else None
        return ModelOutput(out.embedding, logits, out.attention, penalty=None)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The attribute-independent part of the forward: AGA's reduced input (B, c', h, w)."""
        attention_input, _ = self.levels(*self.backbone(images))  # (B, C_in, h, w)
        return self.aga.reduce(attention_input)  # (B, c', h, w)

    def condition(self, features: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
        """The embedding (B, c') of ``encode``'s features under attribute types ``attr``."""
        return self.aga.attend(features, attr).embedding
