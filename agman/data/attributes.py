"""The attribute record every dataset's attribute list is made of.

The attribute index is the model's condition ``a`` (one-hot of size n in Sec. III-C); the
value index is the position of the value name in ``values`` (for FashionAI, of ``y`` in the
label string). Each dataset's list lives in its own module (``agman.data.fashionai.FASHIONAI``,
the stand-ins' in ``agman.data.demo``); ``agman.data.registry.dataset_attributes`` finds it by
``data.dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    name: str  # FashionAI task name without the `_labels` suffix, e.g. "neckline_design"
    values: tuple[str, ...]  # value names in label-string order
