"""DeepFashion's Category and Attribute Prediction benchmark (docs/datasets.md): its parser,
how the release is acquired (:data:`ACQUIRE`, by hand after signing up) and how ``data.dataset:
deepfashion`` is read into the prepared data (:func:`read`: a random split or the benchmark's own
evaluation partition).

Files under the dataset root, each starting with a count line and a header line:

``Anno/list_attr_cloth.txt``: one attribute per line, ``<name> <type>``; names contain single
spaces and are padded with a run of spaces, so a line is split with ``rsplit(maxsplit=1)``.
Types: 1 texture, 2 fabric, 3 shape, 4 part, 5 style. Genuine lines::

    1000
    attribute_name  attribute_type
    a-line                       3
    abstract chevron             1

``Anno/list_attr_img.txt``: one image per line, its path relative to the root followed by one
label per attribute of ``list_attr_cloth.txt``: 1 (positive), -1 (negative), occasionally 0
(not annotated). Genuine line (1000 values, shortened here)::

    img/Sheer_Pleated-Front_Blouse/img_00000001.jpg                       -1 -1 1 -1 ... -1

``Eval/list_eval_partition.txt``: one image per line, ``<path> train|val|test``. Genuine line::

    img/Sheer_Pleated-Front_Blouse/img_00000001.jpg                        train

Multi-label policy. AG-MAN treats an attribute type as a condition with mutually exclusive
values: two images are relevant to each other under a condition when they share its value.
DeepFashion labels are multi-label instead: an image can be positive for several attributes of
one type, or for none. So, for each (image, type) pair, one row is kept when exactly one
attribute of that type is positive, and its value is that attribute's index among the
attributes of that type, in file order. Pairs with no positive or with two or more positives
are dropped (and counted per type), which keeps "same value = relevant" well defined for
queries, candidates and triplets. A 0 label counts as not positive.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from agman.config import DataConfig
from agman.data.acquire import AcquireSpec, Manual, Part, anchored
from agman.data.attributes import Attribute
from agman.data.errors import DataFormatError
from agman.data.prepared import PreparedData
from agman.data.split import check_method, prepare_retrieval

log = logging.getLogger(__name__)

#: Attribute types in the order of their type numbers 1-5; the position is the condition index.
DEEPFASHION_TYPES = ("texture", "fabric", "shape", "part", "style")
PARTITIONS = ("train", "val", "test")

ATTR_CLOTH_FILE = "Anno/list_attr_cloth.txt"
ATTR_IMG_FILE = "Anno/list_attr_img.txt"
PARTITION_FILE = "Eval/list_eval_partition.txt"
ATTR_CLOTH_HEADER = ("attribute_name", "attribute_type")
ATTR_IMG_HEADER = ("image_name", "attribute_labels")
PARTITION_HEADER = ("image_name", "evaluation_status")

# Lines 1 and 2 are the count and the header; data starts on line 3.
_FIRST_DATA_LINE = 3
_LABEL_TOKENS = frozenset({"1", "-1", "0"})
_CHUNK_LINES = 10_000
# Type numbers as written in list_attr_cloth.txt -> position in DEEPFASHION_TYPES.
_TYPE_NUMBERS = {str(i + 1): i for i in range(len(DEEPFASHION_TYPES))}


def _existing(root: str | Path, relative: str, what: str) -> Path:
    path = Path(root) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DeepFashion {what} not found (data.root = {root})")
    return path


def _check_head(path: Path, first: str, second: str, header: tuple[str, ...]) -> int:
    """The count on line 1, after checking it and the header on line 2."""
    try:
        count = int(first.strip())
    except ValueError:
        raise DataFormatError(f"{path}:1: expected the number of entries, got {first.strip()!r}") from None
    if tuple(second.split()) != header:
        raise DataFormatError(f"{path}:2: expected the header {'  '.join(header)!r}, got {second.strip()!r}")
    return count


def _check_count(path: Path, count: int, found: int) -> None:
    if found != count:
        raise DataFormatError(f"{path}:1: the count line says {count} but the file lists {found}")


def _read_attr_cloth(path: Path) -> tuple[list[str], np.ndarray, list[int]]:
    """Attribute names, type indices (0-4) and line numbers, in file order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    count = _check_head(path, lines[0] if lines else "", lines[1] if len(lines) > 1 else "", ATTR_CLOTH_HEADER)
    names, types, line_nos = [], [], []
    for line_no, line in enumerate(lines[_FIRST_DATA_LINE - 1:], start=_FIRST_DATA_LINE):
        if not line.strip():
            continue
        fields = line.rsplit(maxsplit=1)
        if len(fields) != 2:
            raise DataFormatError(f"{path}:{line_no}: expected '<attribute name> <type 1-5>', got {line.strip()!r}")
        name, type_text = fields
        if type_text not in _TYPE_NUMBERS:
            raise DataFormatError(f"{path}:{line_no}: attribute type {type_text!r} of {name.strip()!r} is not one "
                                  "of 1-5 (" + ", ".join(f"{i} {t}" for i, t in enumerate(DEEPFASHION_TYPES, 1)) + ")")
        names.append(name.strip())
        types.append(_TYPE_NUMBERS[type_text])
        line_nos.append(line_no)
    _check_count(path, count, len(names))
    types_array = np.asarray(types, dtype=np.int64)
    for type_index, type_name in enumerate(DEEPFASHION_TYPES):
        # A condition with no attribute has no data to train or evaluate on.
        if not (types_array == type_index).any():
            raise DataFormatError(f"{path}: no attribute of type {type_index + 1} ({type_name})")
    return names, types_array, line_nos


def read_deepfashion_attributes(root: str | Path) -> tuple[Attribute, ...]:
    """The five types of ``Anno/list_attr_cloth.txt`` as ``Attribute``s, in type order.

    Each ``Attribute`` is named after its type (``DEEPFASHION_TYPES``) and holds the names of
    its attributes in file order; a value index of ``read_deepfashion`` indexes these names.
    """
    names, types, _ = _read_attr_cloth(_existing(root, ATTR_CLOTH_FILE, "attribute list"))
    return _attributes(names, types)


def _attributes(names: list[str], types: np.ndarray) -> tuple[Attribute, ...]:
    return tuple(Attribute(type_name, tuple(names[i] for i in np.flatnonzero(types == t)))
                 for t, type_name in enumerate(DEEPFASHION_TYPES))


def _line_of_row(path: Path, row: int) -> int:
    """File line number of a data row, counting as pandas does (blank lines skipped).

    Called only to word an error, so a second pass over the file costs nothing in the
    normal case.
    """
    seen = -1
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line_no >= _FIRST_DATA_LINE and line.strip():
                seen += 1
                if seen == row:
                    return line_no
    raise ValueError(f"{path}: no data row {row}")


def _first_malformed_line(path: Path, n_values: int) -> tuple[int, str] | None:
    """The first line of list_attr_img.txt that is not ``<path> <n_values labels>``.

    Used only once a chunk is known to be malformed, to name the line.
    """
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            fields = line.split()
            if line_no < _FIRST_DATA_LINE or not fields:
                continue
            if len(fields) != n_values + 1:
                return line_no, (f"{len(fields) - 1} values after the image name, expected {n_values} "
                                 f"(one per attribute of {ATTR_CLOTH_FILE})")
            bad = set(fields[1:]) - _LABEL_TOKENS
            if bad:
                return line_no, f"value {sorted(bad)[0]!r} is not one of 1, -1, 0"
    return None


def _malformed(path: Path, n_values: int, detail: str) -> DataFormatError:
    found = _first_malformed_line(path, n_values)
    if found is None:
        return DataFormatError(f"{path}: {detail}")
    line_no, problem = found
    return DataFormatError(f"{path}:{line_no}: {problem}")


def _label_chunks(path: Path, n_values: int) -> Iterator[pd.DataFrame]:
    """``list_attr_img.txt`` in DataFrames of ``_CHUNK_LINES`` rows: column 0 the path, then int8 labels.

    A malformed line is refused with an error naming it.
    """
    # One spare column past the labels: a line with too many values leaves something in it, whatever
    # the parser does with the fields beyond (pandas < 3 truncates a too-long line that starts a chunk
    # to the table's width without an error, pandas-dev/pandas#11569). A line with too few leaves a
    # label empty, which int8 refuses. index_col=False: a long first line must not become an index.
    spare = n_values + 1
    dtype = {0: str, **{i: np.int8 for i in range(1, spare)}, spare: str}
    try:
        with pd.read_csv(path, sep=r"\s+", header=None, names=range(spare + 1), index_col=False,
                         skiprows=_FIRST_DATA_LINE - 1, dtype=dtype, engine="c", quoting=csv.QUOTE_NONE,
                         na_filter=False, encoding="utf-8", chunksize=_CHUNK_LINES) as reader:
            for chunk in reader:
                if (chunk[spare] != "").any():
                    raise _malformed(path, n_values, "a line has more values than attributes")
                yield chunk.iloc[:, :spare]
    except DataFormatError:
        raise
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: no image lines after the header") from None
    except (pd.errors.ParserError, ValueError, OverflowError) as exc:
        raise _malformed(path, n_values, str(exc).strip()) from exc


def _read_attr_img(path: Path, attribute_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Image paths (object array) and their (images, attributes) int8 label matrix."""
    n_values = len(attribute_names)
    with path.open(encoding="utf-8") as fh:
        count = _check_head(path, fh.readline(), fh.readline(), ATTR_IMG_HEADER)
    # The real file holds 289,222 x 1000 labels. The C parser reads them as int8 in chunks, so
    # they take ~300 MB (twice that while the chunks are joined). A Python loop over the values
    # would take minutes, and one read_csv call over the whole file holds several copies at
    # once (1.5 GB peak measured at half the real size).
    path_chunks, label_chunks = [], []
    with warnings.catch_warnings():
        # pandas warns that it drops the surplus of a first line two or more values too long;
        # _label_chunks refuses that line anyway.
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        for chunk in _label_chunks(path, n_values):
            path_chunks.append(chunk[0].to_numpy(dtype=object))
            label_chunks.append(chunk.iloc[:, 1:].to_numpy(dtype=np.int8))
    paths = np.concatenate(path_chunks) if path_chunks else np.empty(0, dtype=object)
    if not paths.size:
        raise DataFormatError(f"{path}: no image lines after the header")
    _check_count(path, count, len(paths))
    labels = np.concatenate(label_chunks)
    bad_rows = np.flatnonzero((labels.min(axis=1) < -1) | (labels.max(axis=1) > 1))
    if bad_rows.size:
        row = int(bad_rows[0])
        column = int(np.flatnonzero((labels[row] < -1) | (labels[row] > 1))[0])
        raise DataFormatError(f"{path}:{_line_of_row(path, row)}: value {labels[row, column]} for attribute "
                              f"{column + 1} ({attribute_names[column]!r}) is not one of 1, -1, 0 "
                              f"({bad_rows.size} lines hold such values)")
    duplicated = np.flatnonzero(pd.Series(paths).duplicated().to_numpy())
    if duplicated.size:
        row = int(duplicated[0])
        raise DataFormatError(f"{path}:{_line_of_row(path, row)}: image {paths[row]} is listed a second time")
    return paths, labels


def read_eval_partition(root: str | Path) -> pd.Series:
    """``Eval/list_eval_partition.txt`` as a Series: index ``path``, values train/val/test."""
    path = _existing(root, PARTITION_FILE, "evaluation partition")
    lines = path.read_text(encoding="utf-8").splitlines()
    count = _check_head(path, lines[0] if lines else "", lines[1] if len(lines) > 1 else "", PARTITION_HEADER)
    first_line_of: dict[str, int] = {}
    statuses = []
    for line_no, line in enumerate(lines[_FIRST_DATA_LINE - 1:], start=_FIRST_DATA_LINE):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataFormatError(f"{path}:{line_no}: expected '<image path> <train|val|test>', got {line.strip()!r}")
        name, status = fields
        if status not in PARTITIONS:
            raise DataFormatError(f"{path}:{line_no}: unknown evaluation status {status!r} (known: "
                                  f"{', '.join(PARTITIONS)})")
        if name in first_line_of:
            raise DataFormatError(f"{path}:{line_no}: image {name} is already listed on line {first_line_of[name]}")
        first_line_of[name] = line_no
        statuses.append(status)
    _check_count(path, count, len(statuses))
    return pd.Series(statuses, index=pd.Index(list(first_line_of), name="path"), name="partition", dtype=object)


def _check_images_exist(root: Path, img_file: Path, paths: np.ndarray) -> None:
    missing = [row for row, relative in enumerate(paths) if not os.path.isfile(root / relative)]
    if missing:
        row = missing[0]
        raise FileNotFoundError(f"{img_file}: {len(missing)} listed images are missing under {root}, first: "
                                f"{paths[row]} (line {_line_of_row(img_file, row)})")


def read_deepfashion(root: str | Path, check_images: bool = True
                     ) -> tuple[pd.DataFrame, tuple[Attribute, ...], dict]:
    """The labelled (image, type) pairs of the benchmark under the multi-label policy above.

    Returns ``(table, attributes, stats)``:

    * ``table`` columns ``path`` (relative to root, as written in the files), ``attribute``
      (type name), ``attribute_index`` (position in ``DEEPFASHION_TYPES``), ``value`` (index
      among the attributes of that type), ``partition`` (train/val/test); rows ordered by the
      image's line, then by type.
    * ``attributes``: one ``Attribute`` per type, see ``read_deepfashion_attributes``.
    * ``stats``: ``images`` (number listed) and four dicts keyed by type name: ``rows`` kept,
      pairs dropped for ``no_positive`` and for ``several_positives``, and
      ``values_without_rows`` (how many of the type's attributes no kept row has).

    ``check_images`` verifies that every listed image exists under root.
    """
    root = Path(root)
    cloth_file = _existing(root, ATTR_CLOTH_FILE, "attribute list")
    img_file = _existing(root, ATTR_IMG_FILE, "image attribute labels")
    names, types, cloth_lines = _read_attr_cloth(cloth_file)
    attributes = _attributes(names, types)
    paths, labels = _read_attr_img(img_file, names)

    partition = read_eval_partition(root)
    image_partition = partition.reindex(paths).to_numpy(dtype=object)
    unassigned = np.flatnonzero(pd.isna(image_partition))
    if unassigned.size:
        row = int(unassigned[0])
        raise DataFormatError(f"{root / PARTITION_FILE}: {unassigned.size} images of {ATTR_IMG_FILE} have no "
                              f"evaluation status, first: {paths[row]} ({img_file}:{_line_of_row(img_file, row)})")
    if check_images:
        _check_images_exist(root, img_file, paths)

    stats: dict = {"images": len(paths), "rows": {}, "no_positive": {}, "several_positives": {},
                   "values_without_rows": {}}
    image_rows, type_rows, value_rows = [], [], []
    for t, type_name in enumerate(DEEPFASHION_TYPES):
        columns = np.flatnonzero(types == t)
        positive = labels[:, columns] == 1
        n_positive = positive.sum(axis=1)
        kept = np.flatnonzero(n_positive == 1)
        values = positive[kept].argmax(axis=1)
        stats["rows"][type_name] = int(kept.size)
        stats["no_positive"][type_name] = int((n_positive == 0).sum())
        stats["several_positives"][type_name] = int((n_positive >= 2).sum())
        stats["values_without_rows"][type_name] = int((np.bincount(values, minlength=columns.size) == 0).sum())
        if not kept.size:
            raise DataFormatError(
                f"{img_file}: no image has exactly one positive attribute of type {t + 1} ({type_name}): "
                f"{stats['no_positive'][type_name]} have none, {stats['several_positives'][type_name]} several; "
                f"its {columns.size} attributes start at {cloth_file}:{cloth_lines[columns[0]]}")
        image_rows.append(kept)
        type_rows.append(np.full(kept.size, t, dtype=np.int64))
        value_rows.append(values.astype(np.int64))
    log.info("%s: kept (image, type) pairs with exactly one positive attribute; dropped per type "
             "(no positive / several positives): %s", img_file,
             ", ".join(f"{n} {stats['no_positive'][n]}/{stats['several_positives'][n]}" for n in DEEPFASHION_TYPES))
    if any(stats["values_without_rows"].values()):
        log.info("%s: attributes with no kept row per type: %s", img_file,
                 ", ".join(f"{n} {stats['values_without_rows'][n]}" for n in DEEPFASHION_TYPES))

    image_index = np.concatenate(image_rows)
    type_index = np.concatenate(type_rows)
    order = np.lexsort((type_index, image_index))
    image_index, type_index = image_index[order], type_index[order]
    table = pd.DataFrame({
        "path": paths[image_index],
        "attribute": np.asarray(DEEPFASHION_TYPES, dtype=object)[type_index],
        "attribute_index": type_index,
        "value": np.concatenate(value_rows)[order],
        "partition": image_partition[image_index],
    })
    return table, attributes, stats


# ------------------------------------------------------------------------------------------------
# The release and its acquisition

URL = "http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/AttributePrediction.html"

ACQUIRE = AcquireSpec(
    dataset="deepfashion",
    image_dir="img",
    required=("img/", ATTR_CLOTH_FILE, ATTR_IMG_FILE, PARTITION_FILE),
    archive_dir="",
    parts=(Part("images", ("img.zip",), ("img",), anchored(("img", "img/"))),),
    loose=(("list_attr_cloth.txt", "Anno"), ("list_attr_img.txt", "Anno"), ("list_eval_partition.txt", "Eval")),
    manual=Manual(
        title="DeepFashion (Category and Attribute Prediction Benchmark)",
        url=URL,
        access="sign-up required: agree to the licence to get the Google Drive link",
        origins={"img.zip": "in the release's Img/ folder",
                 "list_attr_cloth.txt": "in the release's Anno/ folder",
                 "list_attr_img.txt": "in the release's Anno/ folder",
                 "list_eval_partition.txt": "in the release's Eval/ folder"},
        hint="the .txt files may also go in Anno/ and Eval/ there; img.zip may also be extracted "
             "there by hand, as img/<Folder>/img_XXXXXXXX.jpg",
    ),
)

# ------------------------------------------------------------------------------------------------
# Reading data.root into the prepared data


def read(data: DataConfig) -> PreparedData:
    """``data.root`` in DeepFashion's layout as the retrieval task's prepared data (before the
    cache): :func:`read_deepfashion`'s rows, split per ``data.split`` (``method: official`` keeps
    the benchmark's evaluation partition; ``asen`` is refused: it is FashionAI's)."""
    check_method(data.split.method, ("official",), data.dataset)
    table, attributes, stats = read_deepfashion(data.root)
    return prepare_retrieval(table, attributes, data, stats)
