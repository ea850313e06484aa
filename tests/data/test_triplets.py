"""Tests for triplet sampling and the listed triplets' order (agman.data.triplets)."""

import numpy as np
import pandas as pd
import pytest

from agman.data.triplets import sample_triplets, take_listed_triplets, usable_attributes


def test_triplets_are_valid_and_deterministic(demo_table):
    table, names = demo_table
    triplets = sample_triplets(table, names, 500, seed=0, epoch=0)
    assert triplets.shape == (500, 4) and triplets.dtype == np.int64
    a, p, n, attr = triplets.T
    assert (a != p).all()
    assert (table["split"].to_numpy()[triplets[:, :3]] == "train").all()
    attrs, values = table["attribute_index"].to_numpy(), table["value"].to_numpy()
    assert (attrs[a] == attr).all() and (attrs[p] == attr).all() and (attrs[n] == attr).all()
    assert (values[a] == values[p]).all() and (values[a] != values[n]).all()
    assert set(attr) == set(range(len(names)))
    np.testing.assert_array_equal(triplets, sample_triplets(table, names, 500, seed=0, epoch=0))
    assert not np.array_equal(triplets, sample_triplets(table, names, 500, seed=0, epoch=1))


def test_triplets_skip_attributes_that_cannot_form_triplets(caplog):
    table = pd.DataFrame({
        "path": [f"{i}.jpg" for i in range(7)],
        "attribute_index": [0, 0, 0, 1, 1, 2, 2],
        "value": [0, 0, 1, 3, 3, 0, 1],
        "split": ["train"] * 7,
    })
    names = ["ok", "one_value", "singletons"]
    usable, problems = usable_attributes(table, names)
    assert usable == [0]
    assert any(p.startswith("one_value: fewer than 2 values") for p in problems)
    assert any(p.startswith("singletons: no value has 2 training images") for p in problems)
    triplets = sample_triplets(table, names, 50, seed=0, epoch=0)
    assert set(triplets[:, 3]) == {0}
    assert "one_value" in caplog.text
    with pytest.raises(ValueError, match="no attribute can form triplets"):
        sample_triplets(table[table["attribute_index"] == 1], names, 5, seed=0, epoch=0)


def test_listed_triplets_are_used_once_before_repeating():
    listed = np.stack([np.arange(10), np.arange(10) + 100, np.arange(10) + 200, np.arange(10) % 4], axis=1)
    epochs = [take_listed_triplets(listed, 4, seed=0, epoch=e) for e in range(5)]  # 20 = two passes
    first_pass = np.concatenate(epochs)[:10]
    assert sorted(first_pass[:, 0]) == list(range(10))  # every listed triplet once
    np.testing.assert_array_equal(epochs[3], take_listed_triplets(listed, 4, seed=0, epoch=3))  # alone
    assert not np.array_equal(np.concatenate(epochs)[:10], take_listed_triplets(listed, 10, seed=1, epoch=0))
    row = epochs[0][0]
    assert row[1] == row[0] + 100 and row[2] == row[0] + 200  # rows move whole
