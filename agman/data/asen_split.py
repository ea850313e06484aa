"""ASEN's published FashionAI split (REFERENCE.md section 4), so Table 2 can be compared on the
paper's own split (``data.split.method: asen``).

Files, in ``data.split.asen_dir``:

- ``filenames_{train,valid,test}.txt``: one image path per line, ``<split>/Images/<task>_labels/<id>.jpg``;
  the same image is ``Images/<task>_labels/<id>.jpg`` in FashionAI's own layout under ``data.root``.
- ``query_{valid,test}.txt`` and ``candidate_{valid,test}.txt``: ``<row> <task index> <value index>``,
  rows of ``filenames_{split}.txt``, task indices in ASEN's order (``attributes.FASHIONAI``).
- ``label_train.txt``: ``<row> <task> <value> [<task> <value> ...]``.

Every malformed line stops the read with an error naming the file and the line.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from agman.data.attributes import Attribute
from agman.data.fashionai import DataFormatError

COLUMNS = ["path", "attribute", "attribute_index", "value", "split", "role"]


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
        for task, value in zip(numbers[1::2], numbers[2::2]):
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
    table = pd.DataFrame(rows, columns=COLUMNS)
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
    parts = [pd.DataFrame(train, columns=COLUMNS)]
    parts += [read_asen_eval_split(folder, split, attributes) for split in ("valid", "test")]
    return pd.concat(parts, ignore_index=True)
