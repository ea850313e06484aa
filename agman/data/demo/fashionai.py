"""Procedural stand-in for the FashionAI attribute dataset (``data.dataset: demo_fashionai``).

The figures of :func:`agman.data.demo.garment.render_garment` are written in FashionAI's on-disk
format (``Images/<attribute>_labels/<id>.jpg`` plus a header-less ``Annotations/label.csv`` with
``y``/``n``/``m`` label strings), read by :func:`agman.data.fashionai.read` with
:data:`ATTRIBUTES`: the renderer's four visual attributes.

Every image shows a value for every attribute (the unannotated ones act as distractors), but,
as in FashionAI, each image is annotated for exactly one attribute, and framed as FashionAI
frames that attribute (:data:`ANNOTATION_SHOT`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from agman.config import DataConfig
from agman.data.attributes import Attribute
from agman.data.demo.garment import GARMENT_ATTRIBUTES, render_garment
from agman.io import write_folder_atomically

#: The stand-in's attributes and their values: what the renderer draws.
DEMO_FASHIONAI_ATTRIBUTES: tuple[tuple[str, tuple[str, ...]], ...] = GARMENT_ATTRIBUTES
#: The same as the reader's attribute list.
ATTRIBUTES: tuple[Attribute, ...] = tuple(Attribute(name, values) for name, values in DEMO_FASHIONAI_ATTRIBUTES)
#: The shot (``agman.data.demo.garment.SHOTS``) of an image annotated with each attribute:
#: design attributes come as close or upper-body shots and length attributes as full-length ones.
ANNOTATION_SHOT = {"sleeve_length": "upper", "skirt_length": "full", "neckline_design": "close",
                   "texture": "waist"}


def _image_id(seed: int, counter: int) -> str:
    return hashlib.md5(f"{seed}-{counter}".encode()).hexdigest()


def _label_string(n_values: int, value: int, rng: np.random.Generator, maybe_fraction: float) -> str:
    chars = ["n"] * n_values
    chars[value] = "y"
    # Real FashionAI marks some non-annotated values as "m" (maybe); never the positive.
    if rng.random() < maybe_fraction:
        others = [i for i in range(n_values) if i != value]
        chars[others[int(rng.integers(len(others)))]] = "m"
    return "".join(chars)


def _plan(images_per_attribute: int, rng: np.random.Generator) -> list[tuple[int, dict[str, int]]]:
    """(annotated attribute index, values of all attributes) per image, in file order."""
    items: list[tuple[int, dict[str, int]]] = []
    for attr_index, (name, value_names) in enumerate(DEMO_FASHIONAI_ATTRIBUTES):
        balanced = np.arange(images_per_attribute) % len(value_names)
        for annotated in rng.permutation(balanced):
            values = {other: int(rng.integers(len(other_values))) for other, other_values in DEMO_FASHIONAI_ATTRIBUTES}
            values[name] = int(annotated)
            items.append((attr_index, values))
    return [items[i] for i in rng.permutation(len(items))]


def _render_into(root: Path, images_per_attribute: int, size: int, seed: int, jpeg_quality: int) -> None:
    rng = np.random.default_rng(seed)
    for name, _ in DEMO_FASHIONAI_ATTRIBUTES:
        (root / "Images" / f"{name}_labels").mkdir(parents=True)
    (root / "Annotations").mkdir()
    rows = []
    for counter, (attr_index, values) in enumerate(_plan(images_per_attribute, rng)):
        name, value_names = DEMO_FASHIONAI_ATTRIBUTES[attr_index]
        relative = f"Images/{name}_labels/{_image_id(seed, counter)}.jpg"
        # A per-image generator keeps each picture independent of how many random draws
        # the ones before it consumed.
        image = render_garment(values, size, np.random.default_rng([seed, counter]), ANNOTATION_SHOT[name])
        image.save(root / relative, format="JPEG", quality=jpeg_quality)
        label = _label_string(len(value_names), values[name], rng, maybe_fraction=0.05)
        rows.append(f"{relative},{name}_labels,{label}\n")
    with open(root / "Annotations" / "label.csv", "w", newline="") as f:
        f.writelines(rows)


def write_demo_fashionai(
    out_dir: str | os.PathLike, images_per_attribute: int, size: int, seed: int, jpeg_quality: int = 90
) -> None:
    """Write a synthetic FashionAI-format dataset to ``out_dir``, replacing it atomically.

    Each attribute gets ``images_per_attribute`` images whose annotated value is
    balanced across that attribute's values. Output is byte-identical for equal
    arguments. Everything is rendered into ``<out_dir>.tmp-<pid>`` first, so an
    interrupted run never leaves a partial ``out_dir`` behind.
    """
    write_folder_atomically(out_dir, lambda tmp: _render_into(tmp, images_per_attribute, size, seed, jpeg_quality))


def render(data: DataConfig) -> None:
    """The ``download`` stage for ``demo_fashionai``: the stand-in of ``data.demo`` into ``data.root``."""
    demo = data.demo
    write_demo_fashionai(data.root, demo.images_per_attribute, demo.render_size, demo.seed, demo.jpeg_quality)
