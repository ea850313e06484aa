"""Seeded train/valid/test split and the query/candidate split of valid and test.

Paper Sec. III-E: images split at random 8:1:1; in valid and test, images are split into
queries and candidates 1:4 at random over the whole split (REFERENCE.md section 3), so a
query's candidates are the candidates annotated with the query's attribute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from agman.config import SplitConfig


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
