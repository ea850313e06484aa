"""UT-Zappos50K with the CSN split (docs/datasets.md): metadata, filenames and triplet lists.

Layout under ``data.root``:

* ``ut-zap50k-images/<Category>/<SubCategory>/<Brand>/<id>.jpg``, e.g. ``Shoes/Oxfords/Bostonian/100627.72.jpg``;
* ``ut-zap50k-data/meta-data.csv``: a CSV file (fields may be quoted and then contain commas) with the
  header ``CID,Category,SubCategory,HeelHeight,Insole,Closure,Gender,Material,ToeStyle``. ``CID`` is the
  image file's stem with ``.`` replaced by ``-`` (``100627-72``); a field may be empty or hold several
  values joined by ``;`` (``Leather;Rubber``);
* ``filenames.json`` (despite the name, plain text): one image path per line, relative to
  ``ut-zap50k-images/``; line ``i + 1`` is image index ``i``;
* ``tripletlists/<condition>_tripletlist_<split>.txt``: lines ``a b c`` = image indices
  (anchor, far, close): a is more similar to c than to b under that condition.

Triplets are returned in this project's order (anchor, positive = close, negative = far, condition
index), the order the training loop and ``agman.metrics.triplet_relation`` use. Training uses only the
triplet lists; the metadata is descriptive (it says what each condition's values are).

The three archives are downloaded automatically (:data:`URLS`, :data:`ACQUIRE`); :func:`read` turns
``data.root`` into the triplet task's prepared data.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from agman.config import DataConfig
from agman.data.acquire import AcquireSpec, Part, anchored
from agman.data.errors import DataFormatError
from agman.data.prepared import PreparedData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Condition:
    """One of CSN's four conditions: how each file, column and table names it."""

    name: str  # CSN's name and triplet-list file stem (class, closure, gender, heel)
    title: str  # the paper's name (Table 1)
    meta_column: str  # the meta-data.csv column holding its values
    table_column: str  # the prepared table's column holding its values


#: CSN's conditions in their index order: 0 class, 1 closure, 2 gender, 3 heel.
CONDITIONS = (
    Condition("class", "category", "Category", "category"),
    Condition("closure", "closure", "Closure", "closure"),
    Condition("gender", "gender", "Gender", "gender"),
    Condition("heel", "heel height", "HeelHeight", "heel_height"),
)
#: The conditions' names, in index order (the prepared data's attribute list).
CONDITION_NAMES = tuple(c.name for c in CONDITIONS)
SPLITS = ("train", "val", "test")

IMAGES_DIR = "ut-zap50k-images"
META_FILE = "ut-zap50k-data/meta-data.csv"
META_COLUMNS = ("CID", "Category", "SubCategory", "HeelHeight", "Insole", "Closure", "Gender", "Material",
                "ToeStyle")


def read_csn_filenames(root: str | Path) -> list[str]:
    path = Path(root) / "filenames.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CSN filenames list not found (data.root = {root})")
    names = [line.strip() for line in path.read_text().splitlines()]
    for line_no, name in enumerate(names, start=1):
        if not name or name.startswith(("[", "{")):
            raise DataFormatError(f"{path}:{line_no}: expected one image path per line, got {name!r}")
    return names


def triplet_list_path(root: str | Path, condition: str, split: str) -> Path:
    return Path(root) / "tripletlists" / f"{condition}_tripletlist_{split}.txt"


def read_csn_triplets(root: str | Path, split: str, n_images: int) -> np.ndarray:
    """All conditions' triplets of one split, (T, 4) int64: anchor, close, far, condition."""
    if split not in SPLITS:
        raise KeyError(f"split {split!r} is not one of {SPLITS}")
    parts = []
    for condition, name in enumerate(CONDITION_NAMES):
        path = triplet_list_path(root, name, split)
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


def _read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a byte-order mark is dropped); a bad byte is reported by line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_no = data[:err.start].count(b"\n") + 1
        raise DataFormatError(f"{path}:{line_no}: not UTF-8 text ({err.reason})") from None


def _check_header(path: Path, header: list[str]) -> None:
    where = f"{path}:1"
    seen = set()
    for name in header:
        if name in seen:
            raise DataFormatError(f"{where}: column {name!r} appears twice in the header")
        seen.add(name)
    unknown = [name for name in header if name not in META_COLUMNS]
    if unknown:
        raise DataFormatError(f"{where}: unknown header column(s) {', '.join(map(repr, unknown))} "
                              f"(expected {','.join(META_COLUMNS)})")
    missing = [name for name in META_COLUMNS if name not in seen]
    if missing:
        raise DataFormatError(f"{where}: header lacks column(s) {', '.join(map(repr, missing))} "
                              f"(expected {','.join(META_COLUMNS)})")


def read_zappos_meta(root: str | Path) -> pd.DataFrame:
    """``<root>/ut-zap50k-data/meta-data.csv`` as a table of strings indexed by ``CID``.

    The columns are the other eight of ``META_COLUMNS``, in that order whatever the file's column
    order. Values are stripped of surrounding spaces and otherwise kept as written: an empty field
    is ``""`` and a multi-valued one keeps its ``;`` separators. A wrong field count, a header with
    a missing, unknown or repeated column, an empty CID or a repeated CID stop the parse with an
    error naming the file and the line (for a quoted field spanning lines: the record's last line).
    """
    path = Path(root) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: UT-Zappos50K metadata not found (data.root = {root})")
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    first_line: dict[str, int] = {}
    try:
        for fields in reader:
            where = f"{path}:{reader.line_num}"
            if not fields:
                continue
            fields = [f.strip() for f in fields]
            if header is None:
                _check_header(path, fields)
                header = fields
                continue
            if len(fields) != len(header):
                raise DataFormatError(f"{where}: expected {len(header)} comma-separated fields, got {len(fields)}")
            row = dict(zip(header, fields, strict=True))
            cid = row["CID"]
            if not cid:
                raise DataFormatError(f"{where}: empty CID")
            if cid in first_line:
                raise DataFormatError(f"{where}: duplicate CID {cid!r} (first on line {first_line[cid]})")
            first_line[cid] = reader.line_num
            rows.append([row[name] for name in META_COLUMNS])
    except csv.Error as err:
        raise DataFormatError(f"{path}:{reader.line_num}: {err}") from None
    if header is None:
        raise DataFormatError(f"{path}:1: missing header {','.join(META_COLUMNS)}")
    if not rows:
        raise DataFormatError(f"{path}: no rows after the header")
    return pd.DataFrame(rows, columns=list(META_COLUMNS), dtype=object).set_index("CID")


def image_cid(name: str) -> str:
    """The meta-data.csv CID of a ``filenames.json`` path: ``.../100627.72.jpg`` -> ``100627-72``."""
    return PurePosixPath(name).stem.replace(".", "-")


def _assign_splits(triplets: dict[str, np.ndarray], n_images: int) -> tuple[np.ndarray, int, int | None]:
    """Split name per image, the number of images referenced by several splits and the first one."""
    referenced = np.zeros((len(SPLITS), n_images), dtype=bool)
    for s, split in enumerate(SPLITS):
        referenced[s, triplets[split][:, :3].ravel()] = True
    # argmax picks the first referencing split in SPLITS order, which is the documented tie-break.
    split_of = np.asarray(SPLITS, dtype=object)[referenced.argmax(axis=0)]
    split_of[~referenced.any(axis=0)] = "unused"
    several = np.flatnonzero(referenced.sum(axis=0) > 1)
    return split_of, len(several), (int(several[0]) if len(several) else None)


def read_zappos(root: str | Path, check_images: bool = True) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    """UT-Zappos50K with the CSN split: an image table, the triplets of each split and statistics.

    The table has one row per ``filenames.json`` line (row ``i`` = image index ``i`` of the triplet
    lists) with columns ``path`` (``ut-zap50k-images/<line>``, relative to ``root``), ``cid``,
    ``category``, ``closure``, ``gender``, ``heel_height`` (raw meta-data.csv strings; ``""`` for an
    image without a metadata row, which is logged in one warning rather than refused, since training
    uses only the triplet lists) and ``split``: the split whose triplet lists reference the image,
    ``"unused"`` when none does, and the first of train, val, test (with one logged warning) when
    several do.

    ``triplets`` maps each split to a (T, 4) int64 array (anchor, close, far, condition) from
    ``read_csn_triplets``. The statistics are plain ints: ``images``, ``images_without_metadata``,
    ``images_in_several_splits``, ``triplets`` (split -> condition -> count) and ``images_per_split``
    (train, val, test, unused -> count).

    ``check_images`` verifies that every listed image exists. A condition without any triplet in a
    split is a ``DataFormatError`` naming its list file: the model could never learn or be scored on
    that condition there.
    """
    root = Path(root)
    names = read_csn_filenames(root)
    paths = [f"{IMAGES_DIR}/{name}" for name in names]
    if check_images:
        missing = [(line_no, p) for line_no, p in enumerate(paths, start=1) if not (root / p).is_file()]
        if missing:
            line_no, first = missing[0]
            raise FileNotFoundError(f"{root / 'filenames.json'}:{line_no}: {len(missing)} listed images are "
                                    f"missing under {root}, first: {first}")
    meta = read_zappos_meta(root)
    triplets = {split: read_csn_triplets(root, split, len(names)) for split in SPLITS}
    triplet_counts = {}
    for split, rows in triplets.items():
        counts = np.bincount(rows[:, 3], minlength=len(CONDITIONS))
        for condition, count in zip(CONDITION_NAMES, counts, strict=True):
            if count == 0:
                raise DataFormatError(f"{triplet_list_path(root, condition, split)}: no triplets")
        triplet_counts[split] = {condition: int(count)
                                 for condition, count in zip(CONDITION_NAMES, counts, strict=True)}

    cids = [image_cid(name) for name in names]
    table = pd.DataFrame({"path": paths, "cid": cids})
    has_meta = table["cid"].isin(meta.index).to_numpy()
    for c in CONDITIONS:
        table[c.table_column] = table["cid"].map(meta[c.meta_column]).fillna("")
    if not has_meta.all():
        first = int(np.flatnonzero(~has_meta)[0])
        log.warning("%d of %d images in filenames.json have no row in %s (first: line %d, CID %s); their "
                    "metadata columns are left empty", int((~has_meta).sum()), len(names), META_FILE, first + 1,
                    cids[first])
    split_of, n_several, first_several = _assign_splits(triplets, len(names))
    table["split"] = split_of
    if n_several:
        log.warning("%d images are referenced by the triplet lists of several splits (first: filenames.json "
                    "line %d); each is assigned the first of %s", n_several, first_several + 1, ", ".join(SPLITS))
    stats = {
        "images": len(names),
        "images_without_metadata": int((~has_meta).sum()),
        "images_in_several_splits": n_several,
        "triplets": triplet_counts,
        "images_per_split": {split: int((split_of == split).sum()) for split in (*SPLITS, "unused")},
    }
    return table, triplets, stats


# ------------------------------------------------------------------------------------------------
# The release and its acquisition

#: Where the archives are downloaded from, by archive file name.
URLS = {
    "ut-zap50k-images.zip": "http://vision.cs.utexas.edu/projects/finegrained/utzap50k/ut-zap50k-images.zip",
    "ut-zap50k-data.zip": "http://vision.cs.utexas.edu/projects/finegrained/utzap50k/ut-zap50k-data.zip",
    "csn_zappos_triplets.zip": "https://vision.cornell.edu/se3/wp-content/uploads/2019/05/csn_zappos_triplets.zip",
}

ACQUIRE = AcquireSpec(
    dataset="zappos",
    image_dir=IMAGES_DIR,
    required=(f"{IMAGES_DIR}/", META_FILE, "filenames.json",
              *(f"tripletlists/{c}_tripletlist_{s}.txt" for c in CONDITION_NAMES for s in SPLITS)),
    archive_dir="archives",
    parts=(
        Part("images", ("ut-zap50k-images.zip",), (IMAGES_DIR,), anchored((IMAGES_DIR, f"{IMAGES_DIR}/"))),
        Part("metadata", ("ut-zap50k-data.zip",), ("ut-zap50k-data",),
             anchored(("ut-zap50k-data", META_FILE))),
        # Whether the CSN zip has a top folder is unknown: each piece is located on its own.
        Part("csn", ("csn_zappos_triplets.zip",), ("filenames.json", "tripletlists"),
             anchored(("filenames.json", "filenames.json"),
                      ("tripletlists", f"tripletlists/{CONDITION_NAMES[0]}_tripletlist_{SPLITS[0]}.txt"))),
    ),
    urls=URLS,
)

# ------------------------------------------------------------------------------------------------
# Reading data.root into the prepared data


def read(data: DataConfig) -> PreparedData:
    """``data.root`` in UT-Zappos50K's layout as the triplet task's prepared data (before the
    cache): :func:`read_zappos`'s table and triplets under CSN's split (``data.split`` does not
    apply), the split CSN calls ``val`` renamed ``valid`` as everywhere in this project."""
    table, triplets, stats = read_zappos(data.root)
    table["split"] = table["split"].replace({"val": "valid"})
    triplets = {{"val": "valid"}.get(s, s): t for s, t in triplets.items()}
    meta = {"dataset": data.dataset, "stats": stats,
            "attributes": [{"name": name, "values": []} for name in CONDITION_NAMES]}
    return PreparedData(table, list(CONDITION_NAMES), "triplets", triplets=triplets, meta=meta)
