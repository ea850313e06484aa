"""Seeded train/valid/test split and the query/candidate split of valid and test, and the
shared tail of reading a retrieval dataset (value checks, the split per ``data.split.method``).

Paper Sec. III-E: images split at random 8:1:1; in valid and test, images are split into
queries and candidates 1:4 at random over the whole split (docs/evaluation.md), so a
query's candidates are the candidates annotated with the query's attribute.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from agman.config import DataConfig, SplitConfig
from agman.data.attributes import Attribute
from agman.data.prepared import PreparedData

log = logging.getLogger(__name__)


def _check_fractions(cfg: SplitConfig) -> None:
    total = cfg.train + cfg.valid + cfg.test
    if not np.isclose(total, 1.0):
        raise ValueError(f"data.split: train + valid + test must be 1, got {total}")
    if not 0.0 < cfg.query_fraction < 1.0:
        raise ValueError(f"data.split.query_fraction: must be in (0, 1), got {cfg.query_fraction}")


def _assign_roles(split: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """train/query/candidate per image: 1:4 at random within valid and test (fraction 0.2)."""
    role = np.full(len(split), "train", dtype=object)
    for name in ("valid", "test"):
        members = np.flatnonzero(split == name)
        members = members[rng.permutation(len(members))]
        n_query = int(round(fraction * len(members)))
        role[members[:n_query]] = "query"
        role[members[n_query:]] = "candidate"
    return role


def _by_image(table: pd.DataFrame, split: np.ndarray, role: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
    out = table.copy()
    out["split"] = split[codes]
    out["role"] = role[codes]
    return out


def split_items(table: pd.DataFrame, cfg: SplitConfig) -> pd.DataFrame:
    """Add ``split`` (train/valid/test) and ``role`` (train/query/candidate) columns.

    The unit is the image (``path``): a DeepFashion image annotated for several attribute types
    keeps all its rows on one side, so no test image is seen in training under another type.
    For one row per image (FashionAI) this is a split of rows. Counts are rounded from the
    ratios (train and valid rounded, test takes the rest); row order is kept so the table's row
    numbers stay stable across stages.
    """
    _check_fractions(cfg)
    codes, images = pd.factorize(table["path"])  # (rows,) image of each row, in first-seen order
    n = len(images)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(n)
    n_train = int(round(cfg.train * n))
    n_valid = int(round(cfg.valid * n))
    split = np.empty(n, dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train:n_train + n_valid]] = "valid"
    split[order[n_train + n_valid:]] = "test"
    return _by_image(table, split, _assign_roles(split, cfg.query_fraction, rng), codes)


#: DeepFashion's list_eval_partition.txt statuses -> this project's split names.
PARTITION_SPLITS = {"train": "train", "val": "valid", "test": "test"}


def split_by_partition(table: pd.DataFrame, cfg: SplitConfig) -> pd.DataFrame:
    """``data.split.method: official``: the ``partition`` column (DeepFashion's evaluation
    partition) gives the split; valid/test images are divided into queries and candidates as
    in ``split_items``."""
    _check_fractions(cfg)
    if "partition" not in table:
        raise ValueError("data.split.method: official needs a dataset with an evaluation partition (DeepFashion)")
    codes, images = pd.factorize(table["path"])
    first = np.unique(codes, return_index=True)[1]  # (n,) first row of each image
    split = table["partition"].to_numpy()[first]
    unknown = sorted(set(split) - set(PARTITION_SPLITS))
    if unknown:
        raise ValueError(f"unknown evaluation status {unknown[0]!r} (known: {', '.join(PARTITION_SPLITS)})")
    split = np.array([PARTITION_SPLITS[s] for s in split], dtype=object)
    return _by_image(table, split, _assign_roles(split, cfg.query_fraction, np.random.default_rng(cfg.seed)), codes)


# ------------------------------------------------------------------------------------------------
# What every retrieval dataset's reader does once its table is parsed

#: The ``data.split.method`` values that belong to one dataset, and what each is.
DATASET_METHODS = {"asen": "FashionAI's published split", "official": "DeepFashion's evaluation partition"}


def check_method(method: str, supported: Sequence[str], dataset: str) -> None:
    """Refuse a dataset-specific ``data.split.method`` on a dataset that is not its own
    (``random`` suits every dataset; ``supported`` lists the dataset's own)."""
    if method in DATASET_METHODS and method not in supported:
        raise ValueError(f"data.split.method: {method} is {DATASET_METHODS[method]}; data.dataset is {dataset!r}")


def check_values(table: pd.DataFrame, attributes: Sequence[Attribute]) -> None:
    """Stop on an attribute type with no image; count the values with none in one warning (the
    value stays in the list so that indices keep the published meaning)."""
    empty = []
    for a, attr in enumerate(attributes):
        present = set(table.loc[table["attribute_index"] == a, "value"])
        if not present:
            raise ValueError(f"attribute type {attr.name} has no annotated image")
        empty += [f"{attr.name}/{v}" for i, v in enumerate(attr.values) if i not in present]
    if empty:
        log.warning("%d attribute values have no image and can never be queried or anchor a triplet: %s%s",
                    len(empty), ", ".join(empty[:10]), " ..." if len(empty) > 10 else "")


def split_table(table: pd.DataFrame, cfg: SplitConfig) -> pd.DataFrame:
    """``table`` with its ``split`` and ``role`` columns per ``cfg.method``: ``random``
    (:func:`split_items`), ``official`` (:func:`split_by_partition`) or ``asen`` (the table is
    ASEN's published split and carries them already)."""
    if cfg.method == "random":
        return split_items(table, cfg)
    if cfg.method == "official":
        return split_by_partition(table, cfg)
    if cfg.method == "asen":
        return table
    raise ValueError(f"data.split.method: unknown method {cfg.method!r} (known: random, asen, official)")


def prepare_retrieval(table: pd.DataFrame, attributes: Sequence[Attribute], data: DataConfig,
                      stats: dict) -> PreparedData:
    """The retrieval task's prepared data from a parsed ``table`` (columns ``path``,
    ``attribute``, ``attribute_index``, ``value``, and what the split method needs): the values
    checked (:func:`check_values`), the table split (:func:`split_table`), and ``meta`` naming
    ``data.dataset`` with the reader's ``stats`` and the attribute lists."""
    check_values(table, attributes)
    table = split_table(table, data.split)
    meta = {"dataset": data.dataset, "stats": stats,
            "attributes": [{"name": a.name, "values": list(a.values)} for a in attributes]}
    return PreparedData(table, [a.name for a in attributes], "retrieval", meta=meta)
