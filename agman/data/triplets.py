"""Triplet sampling as in ASEN (docs/model.md), seeded and vectorised.

For each triplet: the attribute type is drawn uniformly, then a value of it uniformly among
the values that can anchor (at least 2 images), anchor and positive are two distinct images of
that value, and the negative is an image of another value of the same type, drawn uniformly
among the other values that have images. Nothing loops: every draw is from a non-empty set.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class _AttributeIndex:
    """Rows of one attribute grouped by value (CSR layout) for vectorised draws."""

    def __init__(self, rows: np.ndarray, values: np.ndarray):
        order = np.argsort(values, kind="stable")
        self.rows = rows[order]  # (N,) table rows sorted by value
        present, self.starts, self.counts = np.unique(values[order], return_index=True, return_counts=True)
        self.present = present  # (V,) values with at least one image
        self.anchorable = np.flatnonzero(self.counts >= 2)  # positions in `present`

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        pos = self.anchorable[rng.integers(0, len(self.anchorable), n)]  # (n,) anchor value slot
        count = self.counts[pos]
        i = rng.integers(0, count)
        j = rng.integers(0, count - 1)
        j = j + (j >= i)  # distinct from i without rejection
        neg = rng.integers(0, len(self.present) - 1, n)
        neg = neg + (neg >= pos)  # another value slot
        k = rng.integers(0, self.counts[neg])
        return np.stack([self.rows[self.starts[pos] + i], self.rows[self.starts[pos] + j],
                         self.rows[self.starts[neg] + k]], axis=1)  # (n, 3)


def usable_attributes(train: pd.DataFrame, names: list[str]) -> tuple[list[int], list[str]]:
    """Attribute indices that can form triplets, and a reason for each one that cannot."""
    usable, problems = [], []
    for a, name in enumerate(names):
        counts = train.loc[train["attribute_index"] == a, "value"].value_counts()
        if len(counts) < 2:
            problems.append(f"{name}: fewer than 2 values with training images ({len(counts)})")
        elif (counts >= 2).sum() == 0:
            problems.append(f"{name}: no value has 2 training images, nothing can anchor")
        else:
            usable.append(a)
    return usable, problems


def sample_triplets(table: pd.DataFrame, names: list[str], n: int, seed: int, epoch: int) -> np.ndarray:
    """``n`` triplets ``(anchor, positive, negative, attribute_index)`` of table rows, int64.

    Only ``split == "train"`` rows are drawn. Seeded by ``(seed, epoch)`` so each epoch's file
    can be regenerated alone.
    """
    train = table[table["split"] == "train"]
    usable, problems = usable_attributes(train, names)
    for problem in problems:
        log.warning("attribute excluded from triplets: %s", problem)
    if not usable:
        raise ValueError("no attribute can form triplets: " + "; ".join(problems))
    rng = np.random.default_rng([seed, epoch])
    attrs = np.asarray(usable)[rng.integers(0, len(usable), n)]  # (n,) uniform attribute type
    out = np.empty((n, 4), dtype=np.int64)
    out[:, 3] = attrs
    for a in usable:
        mask = attrs == a
        rows = train.index.to_numpy()[train["attribute_index"].to_numpy() == a]
        values = train.loc[rows, "value"].to_numpy()
        out[mask, :3] = _AttributeIndex(rows, values).sample(int(mask.sum()), rng)
    return out


def take_listed_triplets(listed: np.ndarray, n: int, seed: int, epoch: int) -> np.ndarray:
    """Epoch ``epoch``'s ``n`` triplets from a fixed list (Zappos50k's CSN training lists).

    The list is walked in a seeded shuffle, epoch after epoch: positions ``epoch * n`` to
    ``(epoch + 1) * n`` of the endless sequence shuffle_0, shuffle_1, ... where shuffle_k is a
    permutation seeded by ``(seed, k)``. Every listed triplet is used once before any is used
    again, and each epoch's file can be computed alone.
    """
    if len(listed) == 0:
        raise ValueError("the training triplet list is empty")
    positions = np.arange(epoch * n, (epoch + 1) * n, dtype=np.int64)  # (n,) in the endless sequence
    passes, offsets = np.divmod(positions, len(listed))
    out = np.empty((n, listed.shape[1]), dtype=np.int64)
    for k in np.unique(passes):
        mask = passes == k
        order = np.random.default_rng([seed, int(k)]).permutation(len(listed))
        out[mask] = listed[order[offsets[mask]]]
    return out
