"""Parser of FashionAI's ``Annotations/label.csv`` (REFERENCE.md section 4).

Each row is ``Images/<task>_labels/<id>.jpg,<task>_labels,<label string>`` with one character
per value: ``y`` (yes), ``n`` (no), ``m`` (maybe). The value is the position of the single ``y``;
rows with ``m`` characters are kept, as ASEN does. Malformed rows stop the parse with an error
naming the file and the line: a silently dropped row would shift every later index.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from agman.data.attributes import Attribute


class DataFormatError(ValueError):
    """Malformed dataset file; the message names the file and the line."""


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
