"""FashionAI (Tianchi FashionAI Global Challenge 2018, attributes track; docs/datasets.md):
its attribute list, the ``label.csv`` reader, ASEN's published split, how the release is acquired
and how ``data.dataset: fashionai`` is read into the prepared data.

``Annotations/label.csv``: each row is ``Images/<task>_labels/<id>.jpg,<task>_labels,<label
string>`` with one character per value: ``y`` (yes), ``n`` (no), ``m`` (maybe). The value is the
position of the single ``y``; rows with ``m`` characters are kept, as ASEN does. Malformed rows
stop the parse with an error naming the file and the line: a silently dropped row would shift
every later index.

ASEN's published split (``data.split.method: asen``), so Table 2 can be compared on the paper's
own split. Files, in ``data.split.asen_dir``:

- ``filenames_{train,valid,test}.txt``: one image path per line, ``<split>/Images/<task>_labels/<id>.jpg``;
  the same image is ``Images/<task>_labels/<id>.jpg`` in FashionAI's own layout under ``data.root``.
- ``query_{valid,test}.txt`` and ``candidate_{valid,test}.txt``: ``<row> <task index> <value index>``,
  rows of ``filenames_{split}.txt``, task indices in ASEN's order (:data:`FASHIONAI`).
- ``label_train.txt``: ``<row> <task> <value> [<task> <value> ...]``.

Every malformed line stops the read with an error naming the file and the line.

The release (:data:`ACQUIRE`) is two archives the user downloads by hand after signing up; the
``download`` stage merges them into ``Images/`` and ``Annotations/label.csv``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from agman.config import DataConfig
from agman.data.acquire import AcquireSpec, Manual, Part, locate, merge_tree
from agman.data.attributes import Attribute
from agman.data.errors import ArchiveError, DataFormatError
from agman.data.prepared import PreparedData
from agman.data.split import check_method, prepare_retrieval

log = logging.getLogger(__name__)

# ASEN's task order (docs/datasets.md). Value names as published by the FashionAI
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

# ------------------------------------------------------------------------------------------------
# Annotations/label.csv


def read_fashionai_labels(root: str | Path, attributes: tuple[Attribute, ...], check_images: bool = True,
                          label_file: str | Path | None = None) -> pd.DataFrame:
    """Rows of ``<root>/Annotations/label.csv`` as a table.

    Columns: ``path`` (relative to root), ``attribute`` (name), ``attribute_index`` (position in
    ``attributes``), ``value`` (position of ``y``). ``check_images`` verifies that every listed
    image exists; ``label_file`` reads another file of the same format (e.g. ASEN's per-split
    label files).
    """
    label_file = Path(label_file) if label_file else Path(root) / "Annotations" / "label.csv"
    if not label_file.is_file():
        raise FileNotFoundError(f"{label_file}: FashionAI label file not found (data.root = {root})")
    index = {a.name: i for i, a in enumerate(attributes)}
    rows = []
    with label_file.open(newline="") as fh:
        for line_no, fields in enumerate(csv.reader(fh), start=1):
            where = f"{label_file}:{line_no}"
            if not fields:
                continue
            if len(fields) != 3:
                raise DataFormatError(f"{where}: expected 3 comma-separated fields, got {len(fields)}")
            path, task, labels = (f.strip() for f in fields)
            name = task.removesuffix("_labels")
            if name not in index:
                raise DataFormatError(f"{where}: unknown task {task!r} (known: "
                                      f"{', '.join(a.name + '_labels' for a in attributes)})")
            attr = attributes[index[name]]
            if len(labels) != len(attr.values) or set(labels) - set("ynm"):
                raise DataFormatError(f"{where}: label string {labels!r} must be {len(attr.values)} "
                                      f"characters of y/n/m for {task}")
            if labels.count("y") != 1:
                raise DataFormatError(f"{where}: label string {labels!r} must hold exactly one 'y'")
            rows.append((path, name, index[name], labels.index("y")))
    if not rows:
        raise DataFormatError(f"{label_file}: no rows")
    table = pd.DataFrame(rows, columns=["path", "attribute", "attribute_index", "value"])
    missing = [p for p in table["path"] if not (Path(root) / p).is_file()] if check_images else []
    if missing:
        raise FileNotFoundError(f"{label_file}: {len(missing)} listed images are missing under "
                                f"{root}, first: {missing[0]}")
    return table


# ------------------------------------------------------------------------------------------------
# ASEN's published split

ASEN_COLUMNS = ["path", "attribute", "attribute_index", "value", "split", "role"]


def _filenames(folder: Path, split: str) -> list[str]:
    path = folder / f"filenames_{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ASEN split file not found (data.split.asen_dir = {folder})")
    names = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        name = line.strip()
        prefix = f"{split}/"
        if not name.startswith(prefix + "Images/"):
            raise DataFormatError(f"{path}:{line_no}: expected a path starting with {prefix}Images/, got {name!r}")
        names.append(name[len(prefix):])
    return names


def _entries(path: Path, names: list[str], attributes: tuple[Attribute, ...], many: bool):
    """Yield (row, task, value) of a query/candidate/label file, checking every field."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ASEN split file not found")
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{line_no}"
        if len(fields) < 3 or (len(fields) - 1) % 2 or (not many and len(fields) != 3):
            raise DataFormatError(f"{where}: expected '<row> <task> <value>'{' pairs' if many else ''}, got {line!r}")
        try:
            numbers = [int(f) for f in fields]
        except ValueError:
            raise DataFormatError(f"{where}: non-integer field in {line!r}") from None
        row = numbers[0]
        if not 0 <= row < len(names):
            raise DataFormatError(f"{where}: row {row} out of range (the filenames file has {len(names)} lines)")
        for task, value in zip(numbers[1::2], numbers[2::2], strict=True):
            if not 0 <= task < len(attributes):
                raise DataFormatError(f"{where}: task index {task} out of range 0-{len(attributes) - 1}")
            if not 0 <= value < len(attributes[task].values):
                raise DataFormatError(f"{where}: value {value} out of range for {attributes[task].name}")
            yield row, task, value


def read_asen_eval_split(folder: str | Path, split: str, attributes: tuple[Attribute, ...]) -> pd.DataFrame:
    """Queries and candidates of ASEN's ``valid`` or ``test`` split as prepared-table rows."""
    folder = Path(folder)
    names = _filenames(folder, split)
    rows = []
    for role in ("query", "candidate"):
        for row, task, value in _entries(folder / f"{role}_{split}.txt", names, attributes, many=False):
            rows.append((names[row], attributes[task].name, task, value, split, role))
    table = pd.DataFrame(rows, columns=ASEN_COLUMNS)
    both = set(table.loc[table["role"] == "query", "path"]) & set(table.loc[table["role"] == "candidate", "path"])
    if both:
        raise DataFormatError(f"{folder}: {len(both)} images of {split} are both query and candidate, "
                              f"e.g. {sorted(both)[0]}")
    return table


def read_asen_split(folder: str | Path, attributes: tuple[Attribute, ...]) -> pd.DataFrame:
    """The whole ASEN split: training entries from ``label_train.txt``, then valid and test."""
    folder = Path(folder)
    names = _filenames(folder, "train")
    train = [(names[row], attributes[task].name, task, value, "train", "train")
             for row, task, value in _entries(folder / "label_train.txt", names, attributes, many=True)]
    parts = [pd.DataFrame(train, columns=ASEN_COLUMNS)]
    parts += [read_asen_eval_split(folder, split, attributes) for split in ("valid", "test")]
    return pd.concat(parts, ignore_index=True)


def read_asen(asen_dir: str | Path, root: str | Path) -> pd.DataFrame:
    """ASEN's split in ``asen_dir`` (tasks in :data:`FASHIONAI` order), after checking that each of
    its images is under ``root``."""
    table = read_asen_split(asen_dir, FASHIONAI)
    missing = [p for p in table["path"].unique() if not (Path(root) / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{asen_dir}: {len(missing)} images of the ASEN split are missing "
                                f"under data.root = {root}, first: {missing[0]}")
    return table


# ------------------------------------------------------------------------------------------------
# The release and its acquisition

URL = "https://tianchi.aliyun.com/competition/entrance/231671/information"
ARCHIVES = ("fashionAI_attributes_train1.zip", "fashionAI_attributes_train2.zip")


def _merge(extracted: Sequence[tuple[Path, Path]], scratch: Path) -> dict[str, Path]:
    """Merge the FashionAI archives: Images trees united, label.csv rows concatenated in order.

    Exact duplicate label lines are dropped (the first occurrence is kept, so row order is that
    of the archives); images present in several archives must be identical.
    """
    images = scratch / "Images"
    label_csv = scratch / "Annotations" / "label.csv"
    rows: list[str] = []
    seen: set[str] = set()
    counts = []
    read = 0
    for archive, tree in extracted:
        base = locate(tree, "Annotations/label.csv", archive)
        source_images = base / "Images"
        if not source_images.is_dir():
            raise ArchiveError(f"{archive}: no Images folder beside "
                               f"{(base / 'Annotations').relative_to(tree)}; this is not the expected release")
        if images.exists():
            same = merge_tree(source_images, images, archive, extracted[0][0])
            if same:
                log.info("%s: %d images were already in an earlier archive (identical)", archive.name, same)
        else:
            os.replace(source_images, images)
        try:
            text = (base / "Annotations" / "label.csv").read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            raise ArchiveError(f"{archive}: {(base / 'Annotations' / 'label.csv').relative_to(tree)} "
                               f"is not UTF-8 text ({err})") from None
        lines = [line for line in text.splitlines() if line.strip()]
        for line in lines:
            if line not in seen:
                seen.add(line)
                rows.append(line)
        read += len(lines)
        counts.append(f"{len(lines)} from {archive.name}")
    label_csv.parent.mkdir(parents=True)
    label_csv.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    log.info("FashionAI label.csv: %s; %d exact duplicate lines dropped, %d rows written",
             " + ".join(counts), read - len(rows), len(rows))
    return {"Images": images, "Annotations": label_csv.parent}


ACQUIRE = AcquireSpec(
    dataset="fashionai",
    image_dir="Images",
    required=("Images/", "Annotations/label.csv"),
    archive_dir="",
    parts=(Part("attributes", ARCHIVES, ("Images", "Annotations"), _merge),),
    manual=Manual(
        title="FashionAI (Tianchi FashionAI Global Challenge 2018, attributes track)",
        url=URL,
        access="sign-up required",
        origins={name: "attributes track training data" for name in ARCHIVES},
        hint="or extract them there yourself so that Images/<task>_labels/ and Annotations/label.csv exist",
    ),
)

# ------------------------------------------------------------------------------------------------
# Reading data.root into the prepared data


def read(data: DataConfig, attributes: tuple[Attribute, ...] = FASHIONAI) -> PreparedData:
    """``data.root`` in FashionAI's layout as the retrieval task's prepared data (before the cache).

    The rows are ``label.csv``'s (``attributes`` names its tasks: :data:`FASHIONAI`, or a
    stand-in's list), split per ``data.split``; with ``method: asen`` they are ASEN's published
    split instead (always in :data:`FASHIONAI`'s task order). ``method: official`` is refused:
    it is DeepFashion's.
    """
    check_method(data.split.method, ("asen",), data.dataset)
    if data.split.method == "asen":
        table = read_asen(data.split.asen_dir, data.root)
    else:
        table = read_fashionai_labels(data.root, attributes)
    return prepare_retrieval(table, attributes, data, stats={})
