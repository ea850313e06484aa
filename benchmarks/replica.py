"""Full-size replicas of the three datasets, in exactly the form a user puts each in ``data/raw/<dataset>/``.

The real releases cannot be fetched here, so the stages' behaviour at the real sizes is measured
on replicas: the same files, names, counts and formats as the releases (docs/datasets.md), with
small distinct images instead of photos. What each replica holds, at ``--scale 1``:

* ``fashionai/``: ``fashionAI_attributes_train1.zip`` and ``..._train2.zip``, each with one top
  folder (``base/`` and ``web/``; the reader locates the content wherever it sits) holding
  ``Annotations/label.csv`` and ``Images/<task>_labels/<md5>.jpg``. 180,335 rows over the 8 tasks,
  split across the tasks in proportion to ASEN's per-task test query counts (the per-task counts
  of the release are not published), 44% in the first archive; about 5% of the rows carry an
  ``m``.
* ``deepfashion/``: ``img.zip`` (289,222 images under ``img/<Folder>/``, about 50 per product
  folder) and, loose beside it as the release's download page lists them, ``list_attr_cloth.txt``
  (1,000 attributes, 156/218/180/216/230 of types 1-5, names with spaces, sorted with the types
  interleaved), ``list_attr_img.txt`` (289,222 x 1,000 labels: each attribute positive with
  probability 0.0033, about the real file's 3.3 positives per image, and 0.1% of the negatives
  0) and ``list_eval_partition.txt`` (209,222 / 40,000 / 40,000 train / val / test).
* ``zappos/``: ``archives/`` with the three zips as the download stage stores them
  (``ut-zap50k-images.zip``: 50,025 images in the UT-Zappos50K tree; ``ut-zap50k-data.zip``:
  ``meta-data.csv``, 1% of the images without a row; ``csn_zappos_triplets.zip``:
  ``filenames.json`` and the 12 CSN lists, 200k / 20k / 40k lines per condition).

Images are ``--size`` px JPEGs (64 by default), each a 4x4 grid of colours whose first cell
encodes the file's index, so no two files are equal. ``--photos N`` instead writes a FashionAI
replica of N rows with photo-like 512x512 images (``data_path.synth_photo``), for timing the
paper's 224-px JPEG cache at the real photos' size. Output is byte-identical for equal arguments
and written atomically per dataset.

    python benchmarks/replica.py --out /tmp/replicas                      # all three, full size (~3 GB)
    python benchmarks/replica.py --out /tmp/replicas --scale 0.01 fashionai
    python benchmarks/replica.py --out /tmp/photos --photos 20000 fashionai
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import common  # noqa: F401  (puts the repo root first on sys.path)
import numpy as np
from PIL import Image

from agman.data.deepfashion import ATTR_CLOTH_HEADER, ATTR_IMG_HEADER, PARTITION_HEADER
from agman.data.demo.zappos import sample_triplets
from agman.data.fashionai import ARCHIVES as FASHIONAI_ARCHIVES
from agman.data.fashionai import FASHIONAI
from agman.data.zappos import CONDITION_NAMES, CONDITIONS, IMAGES_DIR, META_COLUMNS, META_FILE, SPLITS
from agman.io import write_folder_atomically

DATASETS = ("fashionai", "deepfashion", "zappos")

FASHIONAI_ROWS = 180_335
#: ASEN's test queries per task (docs/evaluation.md), in FASHIONAI's order: the task proportions.
FASHIONAI_TASK_WEIGHTS = (422, 623, 535, 422, 341, 289, 703, 265)
FASHIONAI_TOP_FOLDERS = ("base", "web")
FASHIONAI_FIRST_ARCHIVE_SHARE = 0.44
MAYBE_FRACTION = 0.05

DEEPFASHION_IMAGES = 289_222
DEEPFASHION_PARTITION = (209_222, 40_000, 40_000)
DEEPFASHION_TYPE_COUNTS = (156, 218, 180, 216, 230)
DEEPFASHION_POSITIVE_RATE = 0.0033
DEEPFASHION_ZERO_RATE = 0.001
IMAGES_PER_FOLDER = 50

ZAPPOS_IMAGES = 50_025
ZAPPOS_TRIPLETS = (200_000, 20_000, 40_000)
ZAPPOS_SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
ZAPPOS_MISSING_META = 0.01
# Enough that every split of a tiny replica has two images sharing a value of each condition.
ZAPPOS_MIN_IMAGES = 200
#: meta-data.csv values of the four CSN conditions (the release's most frequent ones).
ZAPPOS_VALUES = {
    "Category": ("Boots", "Sandals", "Shoes", "Slippers"),
    "Closure": ("Lace up", "Slip-On", "Buckle", "Zipper", "Hook and Loop", "Pull-on", "Elastic Gore"),
    "Gender": ("Men", "Women", "Girls", "Boys", "Boys;Girls", "Men;Women"),
    "HeelHeight": ("Flat", "Under 1in", "1in - 1 3/4in", "2in - 2 3/4in", "3in - 3 3/4in", "4in - 4 3/4in",
                   "5in & over"),
}
ZAPPOS_SUBCATEGORIES = ("Ankle", "Knee High", "Mid-Calf", "Flat", "Heel", "Oxfords", "Loafers", "Slipper Flats")
ZAPPOS_BRANDS = tuple(f"Brand {i:03d}" for i in range(200))

WORDS = ("abstract", "animal", "applique", "baroque", "beaded", "bird", "boho", "border", "brocade", "camo",
         "check", "chevron", "chiffon", "classic", "cotton", "crochet", "denim", "dot", "embroidered", "floral",
         "fringe", "geo", "gingham", "knit", "lace", "leather", "linen", "marled", "mesh", "mineral", "paisley",
         "pleated", "plaid", "print", "ribbed", "ruffle", "satin", "sheer", "stripe", "suede")


def _scaled(count: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(count * scale))


def _split_counts(total: int, weights) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (largest remainders), each part at least 1."""
    weights = np.asarray(weights, dtype=np.float64)
    exact = total * weights / weights.sum()
    counts = np.maximum(np.floor(exact).astype(np.int64), 1)
    for i in np.argsort(-(exact - np.floor(exact)), kind="stable")[:max(0, total - counts.sum())]:
        counts[i] += 1
    return counts


# ------------------------------------------------------------------------------------------------
# Images


def grid_jpegs(n: int, size: int, seed: int, quality: int = 90) -> Iterator[bytes]:
    """``n`` distinct ``size``-px JPEGs: 4x4 colour grids, cell (0, 0) holding the index's 24 bits."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, 4096):
        count = min(4096, n - start)
        grids = rng.integers(0, 256, size=(count, 4, 4, 3), dtype=np.uint8)
        index = np.arange(start, start + count)
        grids[:, 0, 0] = np.stack([(index >> 16) & 255, (index >> 8) & 255, index & 255], axis=1)
        for grid in grids:
            out = io.BytesIO()
            Image.fromarray(grid).resize((size, size), Image.NEAREST).save(out, format="JPEG", quality=quality)
            yield out.getvalue()


def photo_jpegs(n: int, size: int, seed: int, quality: int = 90) -> Iterator[bytes]:
    """``n`` photo-like square JPEGs (benchmarks/data_path.py's synthesis), for decode timing."""
    from data_path import synth_photo  # imports torchvision: only for this mode

    for i in range(n):
        out = io.BytesIO()
        synth_photo(np.random.default_rng([seed, i]), size, size).save(out, format="JPEG", quality=quality)
        yield out.getvalue()


def _zip_images(path: Path, members: list[str], images: Iterator[bytes]) -> None:
    # JPEGs do not compress: stored, as the releases' image zips are in effect.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in zip(members, images, strict=False):
            zf.writestr(zipfile.ZipInfo(name, date_time=(2018, 1, 1, 0, 0, 0)), data)


def _zip_texts(path: Path, files: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2018, 1, 1, 0, 0, 0)), text)


# ------------------------------------------------------------------------------------------------
# FashionAI


def _fashionai_label(n_values: int, value: int, rng: np.random.Generator) -> str:
    chars = ["n"] * n_values
    chars[value] = "y"
    if rng.random() < MAYBE_FRACTION:
        chars[(value + 1 + int(rng.integers(n_values - 1))) % n_values] = "m"
    return "".join(chars)


def write_fashionai(root: Path, scale: float, size: int, seed: int,
                    images: Callable[[int, int, int], Iterator[bytes]] = grid_jpegs, rows: int | None = None) -> None:
    rng = np.random.default_rng([seed, 1])
    n_rows = rows if rows is not None else _scaled(FASHIONAI_ROWS, scale, minimum=len(FASHIONAI) * 2)
    per_task = _split_counts(n_rows, FASHIONAI_TASK_WEIGHTS)
    tasks = rng.permutation(np.repeat(np.arange(len(FASHIONAI)), per_task))
    lines = []
    for i, task in enumerate(tasks):
        attribute = FASHIONAI[task]
        md5 = hashlib.md5(f"replica-{seed}-{i}".encode()).hexdigest()
        label = _fashionai_label(len(attribute.values), int(rng.integers(len(attribute.values))), rng)
        lines.append((f"Images/{attribute.name}_labels/{md5}.jpg", f"{attribute.name}_labels", label))
    first = max(1, round(len(lines) * FASHIONAI_FIRST_ARCHIVE_SHARE))
    pixels = images(len(lines), size, seed)
    parts = (lines[:first], lines[first:])
    for archive, top, part in zip(FASHIONAI_ARCHIVES, FASHIONAI_TOP_FOLDERS, parts, strict=True):
        with zipfile.ZipFile(root / archive, "w", compression=zipfile.ZIP_STORED) as zf:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(part)
            zf.writestr(zipfile.ZipInfo(f"{top}/Annotations/label.csv", date_time=(2018, 1, 1, 0, 0, 0)),
                        text.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
            for (path, _, _), data in zip(part, pixels, strict=False):
                zf.writestr(zipfile.ZipInfo(f"{top}/{path}", date_time=(2018, 1, 1, 0, 0, 0)), data)


# ------------------------------------------------------------------------------------------------
# DeepFashion


def deepfashion_attribute_names(rng: np.random.Generator) -> list[tuple[str, int]]:
    """(name, type number 1-5) of the 1,000 attributes, sorted by name: two- or three-word names."""
    pairs = [f"{a} {b}" for a in WORDS for b in WORDS if a != b]
    chosen = rng.choice(len(pairs), size=sum(DEEPFASHION_TYPE_COUNTS), replace=False)
    types = rng.permutation(np.repeat(np.arange(1, 6), DEEPFASHION_TYPE_COUNTS))
    return sorted((pairs[c], int(t)) for c, t in zip(chosen, types, strict=True))


def _label_lines(paths: list[str], n_attributes: int, rng: np.random.Generator, width: int) -> Iterator[str]:
    tokens = np.array(["-1", "0", "1"])
    for start in range(0, len(paths), 8192):
        count = min(8192, len(paths) - start)
        draw = rng.random((count, n_attributes))
        labels = np.where(draw < DEEPFASHION_POSITIVE_RATE, 2,
                          np.where(draw > 1 - DEEPFASHION_ZERO_RATE, 1, 0))
        for path, row in zip(paths[start:start + count], tokens[labels], strict=True):
            yield f"{path:<{width}}" + " ".join(row.tolist()) + "\n"


def _write_listing(path: Path, header: tuple[str, ...], count: int, lines) -> None:
    with open(path, "w", newline="\n", encoding="utf-8") as fh:
        fh.write(f"{count}\n{'  '.join(header)}\n")
        fh.writelines(lines)


def write_deepfashion(root: Path, scale: float, size: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 2])
    n_images = _scaled(DEEPFASHION_IMAGES, scale, minimum=30)
    attributes = deepfashion_attribute_names(rng)
    paths = []
    for i in range(n_images):
        folder, k = divmod(i, IMAGES_PER_FOLDER)
        first, second = WORDS[folder % len(WORDS)], WORDS[(folder // len(WORDS)) % len(WORDS)]
        paths.append(f"img/{first.capitalize()}_{second.capitalize()}_Dress_{folder:05d}/img_{k + 1:08d}.jpg")
    _zip_images(root / "img.zip", paths, grid_jpegs(n_images, size, seed + 1))
    name_width = max(len(name) for name, _ in attributes) + 3
    _write_listing(root / "list_attr_cloth.txt", ATTR_CLOTH_HEADER, len(attributes),
                   (f"{name:<{name_width}}{t}\n" for name, t in attributes))
    path_width = max(len(p) for p in paths) + 3
    _write_listing(root / "list_attr_img.txt", ATTR_IMG_HEADER, n_images,
                   _label_lines(paths, len(attributes), rng, path_width))
    statuses = np.repeat(np.array(("train", "val", "test")), _split_counts(n_images, DEEPFASHION_PARTITION))
    _write_listing(root / "list_eval_partition.txt", PARTITION_HEADER, n_images,
                   (f"{p:<{path_width}}{s}\n" for p, s in zip(paths, rng.permutation(statuses), strict=True)))


# ------------------------------------------------------------------------------------------------
# UT-Zappos50K with the CSN split


def write_zappos(root: Path, scale: float, size: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 3])
    n_images = _scaled(ZAPPOS_IMAGES, scale, minimum=ZAPPOS_MIN_IMAGES)
    values = np.stack([rng.integers(len(ZAPPOS_VALUES[c.meta_column]), size=n_images) for c in CONDITIONS], axis=1)
    products = 100_000 + rng.choice(9_000_000, size=n_images, replace=False)
    names = []
    for i in range(n_images):
        category = ZAPPOS_VALUES["Category"][values[i, 0]]
        subcategory = ZAPPOS_SUBCATEGORIES[int(rng.integers(len(ZAPPOS_SUBCATEGORIES)))]
        brand = ZAPPOS_BRANDS[int(rng.integers(len(ZAPPOS_BRANDS)))]
        names.append(f"{category}/{subcategory}/{brand}/{products[i]}.{int(rng.integers(1, 10_000))}.jpg")
    archives = root / "archives"
    archives.mkdir()
    _zip_images(archives / "ut-zap50k-images.zip", [f"{IMAGES_DIR}/{n}" for n in names],
                grid_jpegs(n_images, size, seed + 2))

    meta = io.StringIO()
    writer = csv.writer(meta, lineterminator="\n")
    writer.writerow(META_COLUMNS)
    described = rng.permutation(n_images)[max(1, round(ZAPPOS_MISSING_META * n_images)):]
    for i in described:
        row = {"CID": Path(names[i]).stem.replace(".", "-"), "SubCategory": names[i].split("/")[1],
               "Insole": "Padded", "Material": "Leather;Rubber", "ToeStyle": "Round Toe"}
        for c, condition in enumerate(CONDITIONS):
            row[condition.meta_column] = ZAPPOS_VALUES[condition.meta_column][values[i, c]]
        writer.writerow([row[column] for column in META_COLUMNS])
    _zip_texts(archives / "ut-zap50k-data.zip", {META_FILE: meta.getvalue()})

    bounds = np.cumsum([0, *(_split_counts(n_images, ZAPPOS_SPLIT_FRACTIONS))])
    shuffled = rng.permutation(n_images)
    lists = {"filenames.json": "".join(f"{n}\n" for n in names)}
    for s, split in enumerate(SPLITS):
        members = np.sort(shuffled[bounds[s]:bounds[s + 1]])
        for c, condition in enumerate(CONDITION_NAMES):
            rows = sample_triplets(members, values[:, c], _scaled(ZAPPOS_TRIPLETS[s], scale), rng)
            lists[f"tripletlists/{condition}_tripletlist_{split}.txt"] = "".join(
                f"{a} {far} {close}\n" for a, far, close in rows.tolist())
    _zip_texts(archives / "csn_zappos_triplets.zip", lists)


# ------------------------------------------------------------------------------------------------


def write_replica(dataset: str, out: str | Path, scale: float = 1.0, size: int = 64, seed: int = 0,
                  photos: int | None = None) -> Path:
    """Write the replica of ``dataset`` to ``<out>/<dataset>/`` (replacing it); returns that folder."""
    target = Path(out) / dataset
    if photos is not None and dataset != "fashionai":
        raise ValueError("--photos writes a FashionAI replica only")
    writers = {"fashionai": write_fashionai, "deepfashion": write_deepfashion, "zappos": write_zappos}

    def render(tmp: Path) -> None:
        tmp.mkdir()
        if photos is not None:
            write_fashionai(tmp, 1.0, size, seed, images=photo_jpegs, rows=photos)
        else:
            writers[dataset](tmp, scale, size, seed)

    write_folder_atomically(target, render)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="*", choices=[*DATASETS, []], help="default: all three")
    parser.add_argument("--out", required=True, help="folder to write <dataset>/ into")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real counts (1 = full size)")
    parser.add_argument("--size", type=int, default=None, help="image side in px (64; 512 with --photos)")
    parser.add_argument("--photos", type=int, default=None, help="FashionAI only: N rows of photo-like images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    size = args.size or (512 if args.photos else 64)
    report = {"machine": common.machine(), "scale": args.scale, "size": size, "photos": args.photos, "datasets": {}}
    for dataset in args.datasets or DATASETS:
        start = time.perf_counter()
        folder = write_replica(dataset, args.out, args.scale, size, args.seed, args.photos)
        report["datasets"][dataset] = {"seconds": round(time.perf_counter() - start, 1),
                                       "bytes": common.folder_bytes(folder), "folder": str(folder)}
        print(json.dumps({dataset: report["datasets"][dataset]}), flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
