"""UT-Zappos50K with the CSN split (REFERENCE.md section 4): filenames and triplet lists.

Under ``data.root``: ``filenames.json`` (despite the name, plain text: one image path per line,
relative to ``ut-zap50k-images/``) and ``tripletlists/<condition>_tripletlist_<split>.txt`` with
lines ``a b c`` = rows of ``filenames.json`` (anchor, far, close): a is more similar to c than
to b under that condition. Triplets are returned in this project's order
(anchor, positive = close, negative = far, condition index), the order the training loop and
``agman.metrics.triplet_relation`` use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agman.data.fashionai import DataFormatError

#: CSN's condition order: 0 class (category), 1 closure, 2 gender, 3 heel.
CONDITIONS = ("class", "closure", "gender", "heel")
SPLITS = ("train", "val", "test")


def read_csn_filenames(root: str | Path) -> list[str]:
    path = Path(root) / "filenames.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CSN filenames list not found (data.root = {root})")
    names = [line.strip() for line in path.read_text().splitlines()]
    for line_no, name in enumerate(names, start=1):
        if not name or name.startswith(("[", "{")):
            raise DataFormatError(f"{path}:{line_no}: expected one image path per line, got {name!r}")
    return names


def read_csn_triplets(root: str | Path, split: str, n_images: int) -> np.ndarray:
    """All conditions' triplets of one split, (T, 4) int64: anchor, close, far, condition."""
    if split not in SPLITS:
        raise KeyError(f"split {split!r} is not one of {SPLITS}")
    parts = []
    for condition, name in enumerate(CONDITIONS):
        path = Path(root) / "tripletlists" / f"{name}_tripletlist_{split}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: CSN triplet list not found")
        rows = []
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}:{line_no}"
            if len(fields) != 3:
                raise DataFormatError(f"{where}: expected 'anchor far close', got {line!r}")
            try:
                a, far, close = (int(f) for f in fields)
            except ValueError:
                raise DataFormatError(f"{where}: non-integer index in {line!r}") from None
            for index in (a, far, close):
                if not 0 <= index < n_images:
                    raise DataFormatError(f"{where}: index {index} out of range (filenames.json has {n_images} "
                                          "lines)")
            rows.append((a, close, far, condition))
        parts.append(np.asarray(rows, dtype=np.int64).reshape(-1, 4))
    return np.concatenate(parts)
