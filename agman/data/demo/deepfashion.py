"""Procedural stand-in for DeepFashion's Category and Attribute Prediction benchmark
(``data.dataset: demo_deepfashion``).

The real DeepFashion data cannot be downloaded in this environment, so the figures of
``agman.data.demo.garment`` are written in DeepFashion's genuine layout (see ``agman.data.deepfashion``):
``Anno/list_attr_cloth.txt``, ``Anno/list_attr_img.txt``, ``Eval/list_eval_partition.txt`` and
``img/<Folder>/img_XXXXXXXX.jpg``, folders named like products (``Demo_Stripe-Print_V-Neck_Dress``).

Each of the five DeepFashion types is shown by one input of ``render_garment``:

============  ==========================  =====================================================
type          rendered as                 attribute names, in the renderer's value order
============  ==========================  =====================================================
texture       ``texture``                 solid colour, stripe print, polka dot, check print
fabric        ``fabric`` colour family    crushed velvet (red), denim (blue),
                                          cotton-linen (yellow), faux leather (dark grey)
shape         ``skirt_length``            mini length, knee-length, midi length, floor-length
part          ``neckline_design``         crew neck, v-neck, square neck, boat neck
style         ``sleeve_length``           sleeveless, short sleeve, elbow sleeve, long sleeve
============  ==========================  =====================================================

A fabric is shown as a garment colour family, the only fabric-like property the renderer
draws. Every type also lists a few attributes that no image is positive for, as many of the
real file's 1000 are rare. ``list_attr_cloth.txt`` is sorted by name with the types
interleaved, as in the real file, so an attribute's column is not its value index.

Every image shows a value of every type; 90% are full figures (``shot="full"``), the rest
upper-body shots. Its label vector is 1 for those five attributes and -1 elsewhere, except
that, as in the real multi-label data, about 10% of (image, type) pairs get a second positive
of the same type, about 8% get no positive, and about 1% of the negative labels are 0 (not
annotated). The partition is 70/15/15 train/val/test, about the real 72/14/14.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from agman.config import DataConfig
from agman.data.deepfashion import (
    ATTR_CLOTH_FILE,
    ATTR_CLOTH_HEADER,
    ATTR_IMG_FILE,
    ATTR_IMG_HEADER,
    DEEPFASHION_TYPES,
    PARTITION_FILE,
    PARTITION_HEADER,
)
from agman.data.demo.garment import render_garment
from agman.io import write_folder_atomically

# DeepFashion type -> (render_garment input, names of its four values in the renderer's order).
DEMO_DEEPFASHION_SHOWN: dict[str, tuple[str, tuple[str, ...]]] = {
    "texture": ("texture", ("solid colour", "stripe print", "polka dot", "check print")),
    "fabric": ("fabric", ("crushed velvet", "denim", "cotton-linen", "faux leather")),
    "shape": ("skirt_length", ("mini length", "knee-length", "midi length", "floor-length")),
    "part": ("neckline_design", ("crew neck", "v-neck", "square neck", "boat neck")),
    "style": ("sleeve_length", ("sleeveless", "short sleeve", "elbow sleeve", "long sleeve")),
}
# Indices into agman.data.demo.garment.FABRIC_COLOURS: red, blue, yellow and dark grey, far apart in both
# hue and brightness, so the fabric value survives JPEG chroma subsampling and the patterns drawn
# over it.
_FABRIC_FAMILIES = (0, 1, 3, 7)
# Attributes listed in list_attr_cloth.txt that no image is positive for.
DEMO_DEEPFASHION_UNUSED: dict[str, tuple[str, ...]] = {
    "texture": ("animal print", "floral print", "tie-dye"),
    "fabric": ("faux fur", "lace-trim", "chiffon"),
    "shape": ("a-line", "bodycon", "fit and flare"),
    "part": ("cut-out back", "button front", "ruffle hem"),
    "style": ("boho chic", "retro", "street-style"),
}

_SECOND_POSITIVE_FRACTION = 0.10
_NO_POSITIVE_FRACTION = 0.08
_ZERO_FRACTION = 0.01
# Most images are full figures, where every type is visible; the rest are upper-body shots,
# where a long hem may leave the frame, as happens in the real photos.
_UPPER_SHOT_FRACTION = 0.1
_VAL_FRACTION = 0.15
_TEST_FRACTION = 0.15


def _attribute_list() -> list[tuple[str, int]]:
    """(name, type index) of every attribute, sorted by name as in the real file."""
    entries = [(name, t) for t, type_name in enumerate(DEEPFASHION_TYPES)
               for name in DEMO_DEEPFASHION_SHOWN[type_name][1] + DEMO_DEEPFASHION_UNUSED[type_name]]
    return sorted(entries)


def _folder_word(name: str) -> str:
    return "-".join(word.capitalize() for word in re.split(r"[ -]", name))


def _plan(n_images: int, columns: dict[str, int], n_columns: int, rng: np.random.Generator
          ) -> list[tuple[str, dict[str, int], str, np.ndarray]]:
    """(folder, shown value per type, shot, label vector) per image, grouped by folder."""
    items = []
    for _ in range(n_images):
        shown = {t: int(rng.integers(len(DEMO_DEEPFASHION_SHOWN[t][1]))) for t in DEEPFASHION_TYPES}
        shot = "upper" if rng.random() < _UPPER_SHOT_FRACTION else "full"
        labels = np.full(n_columns, -1, dtype=np.int64)
        for type_name in DEEPFASHION_TYPES:
            value_names = DEMO_DEEPFASHION_SHOWN[type_name][1]
            draw = rng.random()
            if draw < _NO_POSITIVE_FRACTION:
                continue
            labels[columns[value_names[shown[type_name]]]] = 1
            if draw < _NO_POSITIVE_FRACTION + _SECOND_POSITIVE_FRACTION:
                others = [v for v in range(len(value_names)) if v != shown[type_name]]
                labels[columns[value_names[others[int(rng.integers(len(others)))]]]] = 1
        labels[(labels == -1) & (rng.random(n_columns) < _ZERO_FRACTION)] = 0
        folder = (f"Demo_{_folder_word(DEMO_DEEPFASHION_SHOWN['texture'][1][shown['texture']])}_"
                  f"{_folder_word(DEMO_DEEPFASHION_SHOWN['part'][1][shown['part']])}_Dress")
        items.append((folder, shown, shot, labels))
    # The real files list a product folder's images together; the sort is stable.
    return sorted(items, key=lambda item: item[0])


def _partition(n_images: int, rng: np.random.Generator) -> list[str]:
    n_val, n_test = round(n_images * _VAL_FRACTION), round(n_images * _TEST_FRACTION)
    statuses = np.array(["train"] * (n_images - n_val - n_test) + ["val"] * n_val + ["test"] * n_test)
    return [str(s) for s in statuses[rng.permutation(n_images)]]


def _render_inputs(shown: dict[str, int]) -> tuple[dict[str, int], int]:
    """render_garment's ``values`` and ``fabric`` arguments for the shown value of each type."""
    values = {DEMO_DEEPFASHION_SHOWN[t][0]: v for t, v in shown.items() if t != "fabric"}
    return values, _FABRIC_FAMILIES[shown["fabric"]]


def _render_into(root: Path, n_images: int, size: int, seed: int, jpeg_quality: int) -> None:
    rng = np.random.default_rng(seed)
    attributes = _attribute_list()
    columns = {name: column for column, (name, _) in enumerate(attributes)}
    plan = _plan(n_images, columns, len(attributes), rng)
    statuses = _partition(n_images, rng)

    paths = []
    per_folder: dict[str, int] = {}
    for i, (folder, shown, shot, _) in enumerate(plan):
        per_folder[folder] = per_folder.get(folder, 0) + 1
        relative = f"img/{folder}/img_{per_folder[folder]:08d}.jpg"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        values, fabric = _render_inputs(shown)
        # A per-image generator keeps each picture independent of how many random draws
        # the ones before it consumed.
        image = render_garment(values, size, np.random.default_rng([seed, i]), shot, fabric=fabric)
        image.save(root / relative, format="JPEG", quality=jpeg_quality)
        paths.append(relative)

    # Names and paths are padded into a column before the values, as in the real files.
    (root / "Anno").mkdir()
    (root / "Eval").mkdir()
    name_width = max(len(name) for name, _ in attributes) + 3
    path_width = max(len(p) for p in paths) + 3
    _write_lines(root / ATTR_CLOTH_FILE, ATTR_CLOTH_HEADER,
                 [f"{name:<{name_width}}{t + 1}" for name, t in attributes])
    _write_lines(root / ATTR_IMG_FILE, ATTR_IMG_HEADER,
                 [f"{p:<{path_width}}" + " ".join(map(str, labels))
                  for p, (*_, labels) in zip(paths, plan, strict=True)])
    _write_lines(root / PARTITION_FILE, PARTITION_HEADER,
                 [f"{p:<{path_width}}{status}" for p, status in zip(paths, statuses, strict=True)])


def _write_lines(path: Path, header: tuple[str, ...], lines: list[str]) -> None:
    with open(path, "w", newline="\n", encoding="utf-8") as f:
        f.write(f"{len(lines)}\n{'  '.join(header)}\n")
        f.writelines(line + "\n" for line in lines)


def write_demo_deepfashion(out_dir: str | os.PathLike, n_images: int, size: int, seed: int,
                           jpeg_quality: int = 90) -> None:
    """Write a synthetic DeepFashion-format dataset of ``n_images`` images to ``out_dir``.

    Output is byte-identical for equal arguments. Everything is rendered into
    ``<out_dir>.tmp-<pid>`` first and renamed into place, so an interrupted run never leaves
    a partial ``out_dir`` behind.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be positive, got {n_images}")
    write_folder_atomically(out_dir, lambda tmp: _render_into(tmp, n_images, size, seed, jpeg_quality))


def render(data: DataConfig) -> None:
    """The ``download`` stage for ``demo_deepfashion``: the stand-in of ``data.demo`` into ``data.root``."""
    demo = data.demo
    write_demo_deepfashion(data.root, demo.deepfashion_images, demo.render_size, demo.seed, demo.jpeg_quality)
