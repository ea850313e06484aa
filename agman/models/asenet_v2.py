"""ASENet_V2: attribute-specific embedding network (Ma, Dong, Long, Zhang, He, Xue and Ji,
"Fine-Grained Fashion Similarity Learning by Attribute-Specific Embedding Network", AAAI 2020),
in the V2 form of its public code; attribute-aware spatial then channel attention.

A baseline of Tables 2-4 and the model AG-MAN extends (AG-MAN Sec. II, Fig. 4):
F3 -> 1x1 conv to c' = ``model.embed_dim`` -> ASA -> sum-pooling -> ACA -> L2 normalisation.
No hierarchical feature, no SA, no CA, no classification branch. To compare like with like the
attention parts are this project's ASA (``asa.py``) and ACA (``aca.py``) behind the same 1x1
reduce conv as AG-MAN's AGA, so this network is AG-MAN with ``hierarchical``, ``cls_loss``,
``aga.sa`` and ``aga.ca`` off, built under its own name.

Where ASEN's published design (its public ``ASENet_V2``) differs from these modules:

1. ASEN attends the raw F3 (1024 channels); its 1x1 conv (1024 -> 512), followed by BatchNorm and
   tanh, only forms the attention key. Here the reduced c'-channel feature is both key and
   attended value (as AG-MAN's public code does), and there is no BatchNorm.
2. ASEN embeds the attribute once (an nn.Embedding shared by both attentions) and transforms it
   with tanh(FC) for the spatial query and ReLU(FC) for the channel one. Here ASA and ACA each
   own a self-gated embedding sigmoid(W a) * (W a) (AG-MAN Eq. 2 and 5).
3. ASEN's channel gate maps [pooled 1024, attribute 512] -> 512 -> 1024; here [c', c'] -> c' -> c'.
4. ASEN has no learned W1 / W2; here they are per-channel weights initialised to 1 (AG-MAN Eq. 3, 6b).
5. ASEN ends in a fully connected layer (1024 -> embedding size) after the channel attention; it
   is left out so that the row differs from AG-MAN only in the parts AG-MAN adds. Whether the AAAI
   paper's text has this layer was not checked.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from agman.config import ModelConfig
from agman.models.aca import AttributeGuidedChannelAttention
from agman.models.agman import ModelOutput
from agman.models.asa import AttributeGuidedSpatialAttention
from agman.models.backbone import MultiLevelBackbone, load_resnet


class ASENetV2(nn.Module):
    def __init__(self, cfg: ModelConfig, n_attributes: int):
        super().__init__()
        self.backbone = MultiLevelBackbone(load_resnet(cfg.backbone, cfg.pretrained))
        self.reduce = nn.Conv2d(self.backbone.f3_channels, cfg.embed_dim, kernel_size=1)
        self.asa = AttributeGuidedSpatialAttention(cfg.embed_dim, n_attributes)
        self.aca = AttributeGuidedChannelAttention(cfg.embed_dim, n_attributes)

    def forward(self, images: torch.Tensor, attr: torch.Tensor, with_logits: bool = False) -> ModelOutput:
        return self._attend(self.encode(images), attr)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The attribute-independent part of the forward: the reduced F3 (B, c', h, w)."""
        _, f3 = self.backbone(images)  # (B, C3, h, w)
        return self.reduce(f3)  # (B, c', h, w)

    def condition(self, features: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
        """The embedding (B, c') of ``encode``'s features under attribute types ``attr``."""
        return self._attend(features, attr).embedding

    def _attend(self, f: torch.Tensor, attr: torch.Tensor) -> ModelOutput:
        f_s, attention = self.asa(f, attr)  # (B, c', h, w), (B, 1, h, w)
        f_c = self.aca(f_s.sum(dim=(2, 3)), attr)  # (B, c') sum-pooled, then channel-gated
        return ModelOutput(F.normalize(f_c.float(), dim=1), None, attention)
