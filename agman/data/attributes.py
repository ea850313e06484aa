"""Attribute types and their values for each dataset, in the index order the model uses.

The attribute index is the model's condition ``a`` (one-hot of size n in Sec. III-C); the
value index is the position of ``y`` in FashionAI's label string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    name: str  # FashionAI task name without the `_labels` suffix, e.g. "neckline_design"
    values: tuple[str, ...]  # value names in label-string order


# ASEN's task order (REFERENCE.md section 4). Value names as published by the FashionAI
# challenge; index 0 of each is "Invisible" (the part cannot be seen). Neckline has 10 values
# in the data although the paper's Table 1 says 11.
FASHIONAI: tuple[Attribute, ...] = (
    Attribute("skirt_length", ("invisible", "short", "knee", "midi", "ankle", "floor")),
    Attribute("sleeve_length", ("invisible", "sleeveless", "cup", "short", "elbow", "three_quarter",
                                "wrist", "long", "extra_long")),
    Attribute("coat_length", ("invisible", "high_waist", "regular", "long", "micro", "knee", "midi",
                              "ankle_floor")),
    Attribute("pant_length", ("invisible", "short", "mid", "three_quarter", "cropped", "full")),
    Attribute("collar_design", ("invisible", "shirt", "peter_pan", "puritan", "rib")),
    Attribute("lapel_design", ("invisible", "notched", "collarless", "shawl", "plus_size_shawl")),
    Attribute("neckline_design", ("invisible", "strapless", "deep_v", "straight", "v", "square",
                                  "off_shoulder", "round", "sweetheart", "one_shoulder")),
    Attribute("neck_design", ("invisible", "turtle", "ruffle_semi_high", "low_turtle", "draped")),
)


def dataset_attributes(dataset: str) -> tuple[Attribute, ...]:
    """The attribute list of a dataset name from ``data.dataset``."""
    if dataset == "fashionai":
        return FASHIONAI
    if dataset == "demo_fashionai":
        from agman.data.demo import DEMO_FASHIONAI_ATTRIBUTES

        return tuple(Attribute(name, values) for name, values in DEMO_FASHIONAI_ATTRIBUTES)
    raise KeyError(f"data.dataset: unknown dataset {dataset!r}")
