"""Losses of Sec. III-D: triplet ranking (Eq. 8), attribute classification (Eq. 7), weighting (Eq. 9)."""

from agman.losses.classification import attribute_classification_loss
from agman.losses.triplet import triplet_ranking_loss
from agman.losses.weighting import build_weighting

__all__ = ["attribute_classification_loss", "build_weighting", "triplet_ranking_loss"]
