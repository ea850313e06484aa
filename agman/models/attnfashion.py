"""AttnFashion (Wan, Yan, Yan and Zhang, "Learning attribute-guided fashion similarity with spatial
and channel attention", J. Exp. Theor. Artif. Intell. 34(4), 2022; AG-MAN reference [28]).

A baseline of Tables 2-4. AG-MAN Sec. II describes it as ASEN's two attribute-guided attentions
acquired concurrently and fused, rather than one after the other: "the concurrent acquisition
and integration of spatial and channel attention features". There is no public code and the
paper's text was not available here, so this is built from that description:

    F3 -> 1x1 conv -> f ;  v_s = sum_hw ASA(f, a) ;  v_c = ACA(mean_hw f, a)
    embedding = L2norm(Linear([v_s, v_c]))

Assumptions (numbered for the fidelity notes, docs/fidelity.md):

1. Title and venue are those of AG-MAN's reference [28]; the name "AttnFashion" comes from
   AG-MAN's tables and from a thesis abstract that presents it ("Attn Fashion", with the ISLN
   of Yan et al., ICME 2022; globethesis.com/?t=2531307076485324), not from the paper's title.
2. Input is F3 (ResNet block #3), as in ASEN and AG-MAN; no hierarchical feature, no
   classification branch, no extra loss term (penalty None).
3. One 1x1 conv maps F3 to c' = ``model.embed_dim`` channels and both branches read its output,
   reading "on the same backbone feature" literally and keeping the parameter count near ASEN's.
4. The spatial branch is this project's ASA (AG-MAN Eq. 1-3, ASEN's attribute-aware spatial
   attention), sum-pooled over positions: an attention-weighted average, as in ASEN and AG-MAN.
5. The channel branch is this project's ACA (AG-MAN Eq. 5-6, ASEN's attribute-aware channel
   attention) on the global average of the same feature, so it never sees the spatial attention:
   that is what "in parallel" is taken to mean. The average (not the sum) puts v_c on the scale
   of v_s, whose weights also sum to 1.
6. Each branch owns its attribute embedding, as ASA and ACA do throughout this project.
7. Fusion is concatenation then Linear(2c', c') with bias, then L2 normalisation: the simplest
   learned fusion that can weigh, mix and rescale the two branches per dimension and returns to
   c' dimensions like every other row (a sum or average is the special case [I, I]). Unsure:
   that thesis abstract calls concatenation a weak fusion, so the paper's own fusion may be
   richer (e.g. element-wise or attention-weighted).
8. No plain (non-guided) SA or CA is added; the training recipe and the cosine triplet loss are
   this project's, the same as for every row.
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


class AttnFashion(nn.Module):
    def __init__(self, cfg: ModelConfig, n_attributes: int):
        super().__init__()
        dim = cfg.embed_dim
        self.backbone = MultiLevelBackbone(load_resnet(cfg.backbone, cfg.pretrained))
        self.reduce = nn.Conv2d(self.backbone.f3_channels, dim, kernel_size=1)
        self.asa = AttributeGuidedSpatialAttention(dim, n_attributes)
        self.aca = AttributeGuidedChannelAttention(dim, n_attributes)
        self.fuse = nn.Linear(2 * dim, dim)

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
        v_s = f_s.sum(dim=(2, 3))  # (B, c') spatial branch
        v_c = self.aca(f.mean(dim=(2, 3)), attr)  # (B, c') channel branch, blind to the attention
        fused = self.fuse(torch.cat([v_s, v_c], dim=1))  # (B, c')
        return ModelOutput(F.normalize(fused.float(), dim=1), None, attention)
