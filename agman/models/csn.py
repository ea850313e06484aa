"""CSN: Conditional Similarity Networks (Veit, Belongie and Karaletsos, CVPR 2017), Sec. 3.

A baseline of Tables 2-4 (AG-MAN Sec. II, Fig. 4). One general embedding e(I) of the image and,
per condition (here an attribute type a), a learned mask m_a = ReLU(beta_a) that selects and
reweights its dimensions; images are compared on e(I) * m_a. CSN's learned-mask variant trains
beta jointly with the network and adds two regularisers to the triplet loss: the L2 norm of the
unmasked embedding and the L1 norm of the masks (CSN Sec. 3; section and equation numbers from
memory of the paper, the terms and weights checked against CSN's public code).

Put on the same footing as AG-MAN (same backbone, recipe and loss):

1. e(I) = Linear(GAP(F3)), F3 the ResNet block #3 output that ASEN and AG-MAN attend over. CSN
   itself embeds the full ResNet-18 output (block #4, average pool, FC).
2. beta = nn.Embedding(n_attributes, D) drawn from N(0.9, 0.7^2), the initialisation of CSN's
   public code for masks learned from random initialisation: most entries start near 1 (the
   full embedding passes), about 10% start below 0 and stay dead under the ReLU, which is how
   CSN's masks diverge per condition. Its alternative (1 on a disjoint slice per condition,
   0.1 elsewhere) is what AG-MAN's public code uses in place of CA, and is not used here.
3. The masked embedding is L2-normalised, so the cosine triplet loss of this project (Eq. 8 of
   AG-MAN, margin 0.2) applies as it does to every row. CSN uses the Euclidean distance on the
   unnormalised masked embedding. Under the cosine loss the triplet term no longer depends on the
   scale of e or of m_a, so the two regularisers act only as scale control (and the L1 term as
   sparsity pressure), not as the bound on distances they were in CSN.
4. penalty = 5e-3 * sqrt(mean_i ||e_i||_2^2) + 5e-4 * mean_i ||m_{a_i}||_1 over the images i of
   the forward pass. The weights are the defaults of CSN's public code (embedding 5e-3, mask
   5e-4). That code divides the batch's Frobenius norm of e by sqrt(batch) and the batch's L1
   norm of the masks by the batch size, each averaged over the three triplet roles; the mask
   term here equals it, the embedding term is one root-mean-square over all 3B images where CSN
   averages three per-role ones (equal when the roles' RMS agree; never smaller, by Jensen).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from agman.config import ModelConfig
from agman.models.agman import ModelOutput
from agman.models.backbone import MultiLevelBackbone, load_resnet

EMBED_NORM_WEIGHT = 5e-3  # CSN public code, --embed_loss default
MASK_NORM_WEIGHT = 5e-4  # CSN public code, --mask_loss default
MASK_INIT_MEAN, MASK_INIT_STD = 0.9, 0.7  # CSN public code, learned masks without pre-initialisation


class CSN(nn.Module):
    def __init__(self, cfg: ModelConfig, n_attributes: int):
        super().__init__()
        self.backbone = MultiLevelBackbone(load_resnet(cfg.backbone, cfg.pretrained))
        self.embed_fc = nn.Linear(self.backbone.f3_channels, cfg.embed_dim)
        self.masks = nn.Embedding(n_attributes, cfg.embed_dim)
        nn.init.normal_(self.masks.weight, MASK_INIT_MEAN, MASK_INIT_STD)

    def general_embedding(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The condition-free embedding e(I) (B, D), and F3 (B, C3, h, w) for the map's size."""
        _, f3 = self.backbone(images)  # (B, C3, h, w)
        return self.embed_fc(f3.mean(dim=(2, 3))), f3  # (B, D)

    def forward(self, images: torch.Tensor, attr: torch.Tensor, with_logits: bool = False) -> ModelOutput:
        e, f3 = self.general_embedding(images)  # (B, D), (B, C3, h, w)
        e = e.float()  # norms and normalisation in float32 under autocast
        mask = self._mask(attr)  # (B, D) m_a
        penalty = (EMBED_NORM_WEIGHT * e.pow(2).sum(dim=1).mean().sqrt()
                   + MASK_NORM_WEIGHT * mask.sum(dim=1).mean())  # () the masks are >= 0, so the sum is L1
        b, _, h, w = f3.shape
        # GAP is pooling under this uniform map, so the figure shows what CSN does.
        attention = f3.new_full((b, 1, h, w), 1.0 / (h * w))  # (B, 1, h, w)
        return ModelOutput(F.normalize(e * mask, dim=1), None, attention, penalty)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The attribute-independent part of the forward: e(I) (B, D) in float32."""
        return self.general_embedding(images)[0].float()

    def condition(self, features: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
        """The embedding (B, D) of ``encode``'s features under attribute types ``attr``."""
        return F.normalize(features * self._mask(attr), dim=1)

    def _mask(self, attr: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.masks(attr)).float()  # (B, D) m_a
