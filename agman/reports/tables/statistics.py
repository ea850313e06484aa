"""The paired bootstrap behind the notes under each table, and the per-item scores it pairs."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agman.experiments import SLOTS, Task
from agman.reports.cell_report import Cell, CellFormatError, CellKey


@dataclass(frozen=True)
class Bootstrap:
    difference: float  # mean of ours - theirs over the items
    low: float  # 95% percentile interval of the resampled mean difference
    high: float
    p_value: float  # two-sided
    n_items: int
    resamples: int


# Index draws per block (x 8 bytes): bounds memory at ~32 MB however many items are resampled.
_BOOTSTRAP_BLOCK = 1 << 22


@functools.lru_cache(maxsize=4)
def _resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n), read-only: how often resample r picks item i, from the ``resamples`` x ``n``
    uniform index draws of ``default_rng(seed)`` that the bootstrap makes, block by block. uint8
    keeps 10,000 resamples of 3,600 items at 36 MB; an item drawn more than 255 times in one
    resample (never seen: the expected count is 1) is refused rather than wrapped."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((resamples, n), dtype=np.uint8)
    block = max(1, _BOOTSTRAP_BLOCK // n)
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        picks = rng.integers(0, n, size=(stop - start, n))
        picks += np.arange(stop - start)[:, None] * n  # one bin per (resample, item)
        tally = np.bincount(picks.ravel(), minlength=(stop - start) * n)
        if tally.max() > 255:
            raise OverflowError(f"an item was drawn {tally.max()} times in one resample of {n}")
        counts[start:stop] = tally.reshape(stop - start, n)
    counts.flags.writeable = False
    return counts


def paired_bootstrap(ours: Sequence[float], theirs: Sequence[float], resamples: int = 10_000,
                     seed: int = 0) -> Bootstrap:
    """Paired bootstrap of the mean difference ``ours - theirs`` over items (same order in both).

    Pairing keeps each item's difficulty out of the comparison: items are resampled with
    replacement and both methods' scores travel together, i.e. the per-item differences are
    resampled. The 95% interval is the percentile interval of the resampled means. The two-sided
    p-value inverts that interval, ``p = 2 * min(share of means <= 0, share >= 0)``, with the
    usual +1 in numerator and denominator so that it is never 0 (at least 2 / (resamples + 1)):
    p < 0.05 exactly when the interval excludes 0. Identical scores give difference 0 and p = 1.

    A seeded numpy loop rather than ``scipy.stats.bootstrap``: scipy reports no p-value, and its
    default BCa interval is undefined when every difference is equal.
    """
    d = np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError(f"paired_bootstrap needs two equally long non-empty 1-d score lists, got shape {d.shape}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    rng = np.random.default_rng(seed)
    values, counts = np.unique(d, return_counts=True)
    if 16 * len(values) <= len(d):
        # Few distinct differences (triplet correctness gives only -1, 0, +1): drawing how often
        # each value is picked is the same resampling, and costs resamples x distinct values
        # instead of resamples x items (0.01 s instead of ~20 s for Zappos50k's 160,000 triplets).
        means = rng.multinomial(len(d), counts / len(d), size=resamples) @ values / len(d)
    else:
        # Every call with the same items count and seed draws the same resamples: the tables make
        # dozens of such comparisons per slot, so the draws are made once, kept as how often
        # each item is picked in each resample, and each call is one product with them.
        means = np.empty(resamples)
        counts = _resample_counts(len(d), resamples, seed)  # (resamples, n) uint8
        block = max(1, _BOOTSTRAP_BLOCK // len(d))
        for start in range(0, resamples, block):
            means[start:start + block] = counts[start:start + block].astype(np.float64) @ d / len(d)
    low, high = np.quantile(means, [0.025, 0.975])
    tail = min(np.count_nonzero(means <= 0), np.count_nonzero(means >= 0))
    p = min(1.0, 2 * (tail + 1) / (resamples + 1))
    return Bootstrap(float(d.mean()), float(low), float(high), float(p), len(d), resamples)


def item_scores(cells: Mapping[CellKey, Cell], slot: str, variant: str, seeds: Sequence[int]) -> np.ndarray:
    """Per-item scores in percent, averaged over seeds.

    Averaging assumes row i is the same test item in every seed: the evaluation order is fixed
    by the test split, which the training seed does not change. The pair key column guards it.
    """
    task = SLOTS[slot].task
    ref = cells[(slot, variant, seeds[0])]
    scores = []
    for seed in seeds:
        cell = cells[(slot, variant, seed)]
        check_paired(ref, cell, task)
        scores.append(100.0 * cell.per_item[task.score].to_numpy(dtype=float))
    return np.mean(scores, axis=0)


def check_paired(a: Cell, b: Cell, task: Task) -> None:
    """Raise CellFormatError unless the per_item.csv rows of ``a`` and ``b`` are the same items in the same order."""
    ka, kb = a.per_item[task.pair_key].to_numpy(), b.per_item[task.pair_key].to_numpy()
    if len(ka) != len(kb) or not np.array_equal(ka, kb):
        raise CellFormatError(f"per_item.csv of {a.name} ({len(ka)} rows) and {b.name} ({len(kb)} rows) do not list "
                              f"the same {task.items} in the same order ({task.pair_key!r} differs): they cannot be "
                              "paired")
