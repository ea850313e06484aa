"""Attribute classification loss L_c (Sec. III-D, Eq. 7).

Binary cross-entropy with logits against the one-hot of the attribute TYPE (n classes), averaged
over classes and over every image of the batch (the three images of each triplet). Eq. 7 shows a
per-attribute weight w_a; neither the paper nor the public code gives values, so all are 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def attribute_classification_loss(logits: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
    """logits (B, n), attr (B,) integer attribute types."""
    target = F.one_hot(attr, num_classes=logits.shape[1]).to(logits.dtype)  # (B, n)
    return F.binary_cross_entropy_with_logits(logits, target)
