"""Procedural stand-in for UT-Zappos50K with the CSN split, written in the genuine on-disk layout
(``data.dataset: demo_zappos``).

The stand-in reproduces the format and the structure of the task, not shoes: there is no shoe
renderer here, so every image is the dress-like figure of ``agman.data.demo.garment.render_garment``. Each
image draws one of four values for each CSN condition, and one of the renderer's visual attributes
carries it (``DEMO_ZAPPOS_CONDITIONS``): category <- skirt length, closure <- neckline,
gender <- sleeve length, heel height <- fabric texture. Like UT-Zappos50K's catalogue photographs,
every image is one centred figure at one scale on a plain white background (``shot="catalogue"``).
(With the randomly placed and scaled figures on cluttered backgrounds of the other stand-ins, the
demo's 32 px, 3-epoch cells stayed within a few points of chance on this task.) What is written, under ``out_dir``:

* ``ut-zap50k-images/<Category>/<SubCategory>/<Brand>/<product>.<style>.jpg`` (made-up
  subcategories and brands, ids shaped like the real ``7965307.5291``);
* ``ut-zap50k-data/meta-data.csv`` with all nine columns; Material and ToeStyle are made up, some
  multi-valued (``;``-joined), some empty; one made-up ToeStyle value holds a comma (written quoted);
  about 1% of the images get no row, as in the real file;
* ``filenames.json``: one path per line relative to ``ut-zap50k-images/``, in a seeded order;
* ``tripletlists/<condition>_tripletlist_<split>.txt``: lines ``a b c`` (anchor, far, close).

As CSN did, the images are split 70/10/20 into train/val/test at random, and each split's
triplets are drawn among that split's images only: close shares the anchor's value of the
condition (and is a different image), far has another value.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from agman.config import DataConfig
from agman.data.demo.garment import render_garment
from agman.data.zappos import CONDITION_NAMES, IMAGES_DIR, META_COLUMNS, META_FILE, SPLITS, triplet_list_path
from agman.io import write_folder_atomically

#: (CSN condition, meta-data.csv column, renderer attribute carrying it, values), in ``CONDITION_NAMES`` order.
DEMO_ZAPPOS_CONDITIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("class", "Category", "skirt_length", ("Boots", "Sandals", "Shoes", "Slippers")),
    ("closure", "Closure", "neckline_design", ("Lace up", "Slip-On", "Buckle", "Zipper")),
    ("gender", "Gender", "sleeve_length", ("Men", "Women", "Girls", "Boys")),
    ("heel", "HeelHeight", "texture", ("Flat", "Under 1in", "1in - 1 3/4in", "2in - 2 3/4in")),
)

SUBCATEGORIES = {
    "Boots": ("Ankle", "Knee High", "Mid-Calf"),
    "Sandals": ("Flat", "Heel", "Athletic"),
    "Shoes": ("Oxfords", "Loafers", "Sneakers and Athletic Shoes"),
    "Slippers": ("Slipper Flats", "Slipper Heels"),
}
BRANDS = ("Ashby", "Marlow Creek", "Northfield", "Tanner Row", "Vale and Stone")
INSOLES = ("Padded", "Cushioned", "Removable", "")
MATERIALS = ("Leather", "Rubber", "Suede", "Synthetic", "Canvas")
TOE_STYLES = ("Round Toe", "Pointed Toe", "Square Toe", "Moc Toe, Stitched")

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
# Balanced values guarantee that a split of at least 5 images has, for every condition, two images
# sharing a value (5 > 4 values) and two with different values: a close and a far for some anchor.
MIN_IMAGES_PER_SPLIT = 5
MISSING_META_FRACTION = 0.01


def _split_sizes(n_images: int) -> tuple[int, int, int]:
    n_train = round(SPLIT_FRACTIONS[0] * n_images)
    n_val = round(SPLIT_FRACTIONS[1] * n_images)
    return n_train, n_val, n_images - n_train - n_val


def _multi_value(choices: tuple[str, ...], rng: np.random.Generator) -> str:
    """Empty (10%), one value (70%) or two ``;``-joined values (20%), like the real metadata."""
    u = rng.random()
    if u < 0.1:
        return ""
    count = 1 if u < 0.8 else 2
    picked = rng.choice(len(choices), size=count, replace=False)
    return ";".join(choices[i] for i in sorted(picked))


def sample_triplets(members: np.ndarray, values: np.ndarray, count: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``count`` rows (anchor, far, close) of image indices among ``members`` under one condition.

    The members are sorted by value so that each value is one contiguous block; close is drawn from
    the anchor's block without the anchor, far from everything outside the block.
    """
    order = np.argsort(values[members], kind="stable")
    ranked, ranked_values = members[order], values[members][order]
    starts = np.searchsorted(ranked_values, ranked_values, side="left")
    ends = np.searchsorted(ranked_values, ranked_values, side="right")
    eligible = np.flatnonzero(ends - starts >= 2)
    anchor = eligible[rng.integers(len(eligible), size=count)]
    start, end = starts[anchor], ends[anchor]
    close = start + rng.integers(end - start - 1)
    close += close >= anchor
    far = rng.integers(len(ranked) - (end - start))
    far += np.where(far >= start, end - start, 0)
    return np.stack([ranked[anchor], ranked[far], ranked[close]], axis=1)


def _plan(n_images: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split index (0-2) and per-condition value index (n, 4) of every image, in filenames.json order."""
    split = np.empty(n_images, dtype=np.int64)
    values = np.empty((n_images, len(CONDITION_NAMES)), dtype=np.int64)
    bounds = np.cumsum((0, *_split_sizes(n_images)))
    shuffled = rng.permutation(n_images)
    for s in range(len(SPLITS)):
        members = shuffled[bounds[s]:bounds[s + 1]]
        split[members] = s
        for c, (_, _, _, names) in enumerate(DEMO_ZAPPOS_CONDITIONS):
            values[members, c] = rng.permutation(np.arange(len(members)) % len(names))
    return split, values


def _relative_paths(values: np.ndarray, rng: np.random.Generator) -> list[str]:
    categories = DEMO_ZAPPOS_CONDITIONS[0][3]
    # Distinct product numbers make every id (and hence every CID) unique.
    products = 1_000_000 + rng.choice(9_000_000, size=len(values), replace=False)
    styles = rng.integers(1, 10_000, size=len(values))
    paths = []
    for row, product, style in zip(values, products, styles, strict=True):
        category = categories[row[0]]
        subcategory = SUBCATEGORIES[category][rng.integers(len(SUBCATEGORIES[category]))]
        brand = BRANDS[rng.integers(len(BRANDS))]
        paths.append(f"{category}/{subcategory}/{brand}/{product}.{style}.jpg")
    return paths


def _meta_csv(paths: list[str], values: np.ndarray, rng: np.random.Generator) -> str:
    n_missing = max(1, round(MISSING_META_FRACTION * len(paths)))
    described = np.sort(rng.permutation(len(paths))[n_missing:])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(META_COLUMNS)
    # The rows follow their own order, unrelated to filenames.json, so a reader has to match by CID.
    for i in described[rng.permutation(len(described))]:
        stem = Path(paths[i]).stem
        row = {"CID": stem.replace(".", "-"), "SubCategory": paths[i].split("/")[1],
               "Insole": INSOLES[rng.integers(len(INSOLES))], "Material": _multi_value(MATERIALS, rng),
               "ToeStyle": _multi_value(TOE_STYLES, rng)}
        for c, (_, column, _, names) in enumerate(DEMO_ZAPPOS_CONDITIONS):
            row[column] = names[values[i, c]]
        writer.writerow([row[column] for column in META_COLUMNS])
    return out.getvalue()


def _render_into(root: Path, n_images: int, triplets_per_condition: tuple[int, int, int], size: int, seed: int,
                 jpeg_quality: int) -> None:
    rng = np.random.default_rng(seed)
    split, values = _plan(n_images, rng)
    paths = _relative_paths(values, rng)
    for i, relative in enumerate(paths):
        target = root / IMAGES_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        attributes = {attribute: int(values[i, c]) for c, (_, _, attribute, _) in enumerate(DEMO_ZAPPOS_CONDITIONS)}
        # A per-image generator keeps each picture independent of the draws made before it.
        image = render_garment(attributes, size, np.random.default_rng([seed, i]), shot="catalogue")
        image.save(target, format="JPEG", quality=jpeg_quality)
    (root / "filenames.json").write_text("".join(f"{p}\n" for p in paths))
    (root / META_FILE).parent.mkdir(parents=True)
    (root / META_FILE).write_text(_meta_csv(paths, values, rng))
    (root / "tripletlists").mkdir()
    for c, condition in enumerate(CONDITION_NAMES):
        for s, split_name in enumerate(SPLITS):
            rows = sample_triplets(np.flatnonzero(split == s), values[:, c], triplets_per_condition[s], rng)
            triplet_list_path(root, condition, split_name).write_text(
                "".join(f"{a} {far} {close}\n" for a, far, close in rows))


def write_demo_zappos(out_dir: str | os.PathLike, n_images: int, triplets_per_condition: tuple[int, int, int],
                      size: int, seed: int, jpeg_quality: int = 90) -> None:
    """Write a synthetic UT-Zappos50K + CSN-split dataset to ``out_dir``, replacing it atomically.

    ``n_images`` images of ``size`` x ``size`` pixels are split 70/10/20; each condition gets
    ``triplets_per_condition`` = (train, val, test) triplet lines per split. Output is
    byte-identical for equal arguments. Everything is rendered into ``<out_dir>.tmp-<pid>``
    first, so an interrupted run never leaves a partial ``out_dir`` behind.
    """
    sizes = _split_sizes(n_images)
    if min(sizes) < MIN_IMAGES_PER_SPLIT:
        raise ValueError(f"n_images={n_images} gives train/val/test {sizes} images; every split needs at least "
                         f"{MIN_IMAGES_PER_SPLIT}")
    if len(triplets_per_condition) != len(SPLITS) or min(triplets_per_condition) < 1:
        raise ValueError(f"triplets_per_condition={triplets_per_condition} must be 3 positive counts (train, val, "
                         "test): the reader refuses a condition without triplets")
    write_folder_atomically(out_dir, lambda tmp: _render_into(tmp, n_images, tuple(triplets_per_condition), size,
                                                              seed, jpeg_quality))


def csn_triplet_counts(training: int) -> tuple[int, int, int]:
    """(train, val, test) triplet lines per condition for ``training`` training lines: CSN's
    200k/20k/40k proportions, at least one line each."""
    return training, max(1, training // 10), max(1, training // 5)


def render(data: DataConfig) -> None:
    """The ``download`` stage for ``demo_zappos``: the stand-in of ``data.demo`` into ``data.root``."""
    demo = data.demo
    write_demo_zappos(data.root, demo.zappos_images, csn_triplet_counts(demo.zappos_triplets), demo.render_size,
                      demo.seed, demo.jpeg_quality)
