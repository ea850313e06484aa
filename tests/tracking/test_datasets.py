"""The digest of a split's MLflow dataset: it follows the split's rows, its triplets and the cached
pixels, and nothing else."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from agman.tracking.datasets import split_dataset, split_digest


def edited(data, row: int, column: str, value):
    """``data`` with one cell of its table changed."""
    table = data.table.copy()
    table.loc[row, column] = value
    return dataclasses.replace(data, table=table)


def first_row(data, split: str) -> int:
    return int(np.flatnonzero(data.table["split"].to_numpy() == split)[0])


def test_the_digest_changes_when_a_row_of_the_split_changes(demo_data):
    row = first_row(demo_data, "train")
    relabelled = edited(demo_data, row, "value", demo_data.table.loc[row, "value"] + 1)
    assert split_digest(relabelled, "train") != split_digest(demo_data, "train")
    moved = edited(demo_data, row, "split", "valid")
    assert split_digest(moved, "train") != split_digest(demo_data, "train")


def test_the_digest_of_a_split_ignores_the_rows_of_the_others(demo_data):
    row = first_row(demo_data, "test")
    other = edited(demo_data, row, "value", 99)
    assert split_digest(other, "train") == split_digest(demo_data, "train")
    assert split_digest(other, "test") != split_digest(demo_data, "test")


def test_the_digest_changes_when_the_cached_pixels_change(demo_data):
    cache = copy.copy(demo_data.cache)
    cache.sha256 = "0" * 64  # what cache.json says after one re-decoded image
    assert split_digest(dataclasses.replace(demo_data, cache=cache), "train") != split_digest(demo_data, "train")


def test_the_digest_changes_when_the_splits_triplets_change(demo_data):
    triplets = np.array([[0, 1, 2, 0]])
    before = split_digest(dataclasses.replace(demo_data, triplets={"test": triplets}), "test")
    after = split_digest(dataclasses.replace(demo_data, triplets={"test": triplets[:, [1, 0, 2, 3]]}), "test")
    assert before != after


def test_the_dataset_is_named_for_its_source_and_split_and_points_at_the_prepared_table(demo_data):
    dataset = split_dataset(demo_data, "valid", "demo_fashionai")
    assert dataset.name == "demo_fashionai:valid" and dataset.digest == split_digest(demo_data, "valid")
    assert dataset.source.to_dict()["uri"] == str(demo_data.cache.folder.parent / "items.csv")
    assert dataset.profile["num_rows"] == (demo_data.table["split"] == "valid").sum()
