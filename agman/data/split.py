"""Seeded train/valid/test split and the query/candidate split of valid and test.

Paper Sec. III-E: images split at random 8:1:1; in valid and test, images are split into
queries and candidates 1:4 at random over the whole split (REFERENCE.md section 3), so a
query's candidates are the candidates annotated with the query's attribute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from agman.config import SplitConfig


def split_items(table: pd.DataFrame, cfg: SplitConfig) -> pd.DataFrame:
    """Add ``split`` (train/valid/test) and ``role`` (train/query/candidate) columns.

    Counts are rounded from the ratios (train and valid rounded, test takes the rest); row
    order is kept so the table's row numbers stay stable across stages.
    """
    total = cfg.train + cfg.valid + cfg.test
    if not np.isclose(total, 1.0):
        raise ValueError(f"data.split: train + valid + test must be 1, got {total}")
    if not 0.0 < cfg.query_fraction < 1.0:
        raise ValueError(f"data.split.query_fraction: must be in (0, 1), got {cfg.query_fraction}")
    n = len(table)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(n)
    n_train = int(round(cfg.train * n))
    n_valid = int(round(cfg.valid * n))
    split = np.empty(n, dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train:n_train + n_valid]] = "valid"
    split[order[n_train + n_valid:]] = "test"
    role = np.full(n, "train", dtype=object)
    for name in ("valid", "test"):
        members = np.flatnonzero(split == name)
        members = members[rng.permutation(len(members))]
        n_query = int(round(cfg.query_fraction * len(members)))
        role[members[:n_query]] = "query"
        role[members[n_query:]] = "candidate"
    out = table.copy()
    out["split"] = split
    out["role"] = role
    return out
