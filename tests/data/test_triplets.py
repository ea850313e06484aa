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


def test_a_seed_and_epoch_give_these_triplets():
    """The draws pinned for one small table: a seeded sampler must give a rerun, or another
    machine, the same training triplets (the run fingerprint hashes them), so a change to the
    order of the draws is a change of experiment and must show here."""
    table = pd.DataFrame({"attribute_index": [0] * 9 + [1] * 4, "value": [2, 0, 1, 0, 2, 1, 0, 1, 2, 0, 1, 1, 0],
                          "split": ["train"] * 12 + ["test"]})
    triplets = sample_triplets(table, ["a", "b"], 8, seed=3, epoch=1)
    assert triplets.dtype == np.int64
    assert triplets.tolist() == [[11, 10, 9, 1], [0, 8, 3, 0], [11, 10, 9, 1], [5, 7, 0, 0], [11, 10, 9, 1],
                                 [5, 2, 3, 0], [8, 4, 2, 0], [6, 3, 4, 0]]


def test_listed_triplets_are_pinned_for_a_seed_and_an_empty_or_one_row_list_is_handled():
    listed = np.arange(12).reshape(3, 4)  # three triplets of (anchor, close, far, condition)
    out = take_listed_triplets(listed, 5, seed=2, epoch=1)  # positions 5-9: the end of pass 1, pass 2, pass 3
    assert out.dtype == np.int64
    assert out.tolist() == [[4, 5, 6, 7], [4, 5, 6, 7], [8, 9, 10, 11], [0, 1, 2, 3], [8, 9, 10, 11]]
    assert take_listed_triplets(listed[:1], 3, seed=0, epoch=2).tolist() == [[0, 1, 2, 3]] * 3
    with pytest.raises(ValueError, match="^the training triplet list is empty$"):
        take_listed_triplets(listed[:0], 3, seed=0, epoch=0)


def test_an_excluded_attribute_is_named_in_the_log_and_in_the_error(caplog):
    table = pd.DataFrame({"attribute_index": [0, 0, 1, 1, 1], "value": [0, 0, 0, 1, 1], "split": ["train"] * 5})
    with caplog.at_level("WARNING"):
        sample_triplets(table, ["one_value", "ok"], 4, seed=0, epoch=0)
    assert "attribute excluded from triplets: one_value: fewer than 2 values" in caplog.text
    with pytest.raises(ValueError, match="^no attribute can form triplets: one_value: fewer than 2 values"):
        sample_triplets(table[table["attribute_index"] == 0], ["one_value", "ok"], 4, seed=0, epoch=0)


def _two_excluded_attributes_table(with_usable: bool) -> pd.DataFrame:
    """``collar`` has one value in train (its second value, 7, is test-only), ``sleeve`` has three
    values of one image each; ``length`` (optional) can form triplets."""
    attrs, values = [0, 0, 0, 0, 1, 1, 1], [4, 4, 4, 7, 0, 1, 2]
    split = ["train", "train", "train", "test", "train", "train", "train"]
    if with_usable:
        attrs, values, split = attrs + [2, 2, 2], values + [0, 0, 1], split + ["train"] * 3
    return pd.DataFrame({"attribute_index": attrs, "value": values, "split": split})


def test_each_excluded_attribute_is_logged_as_exactly_one_warning_line(caplog):
    table = _two_excluded_attributes_table(with_usable=True)
    with caplog.at_level("WARNING", logger="agman.data.triplets"):
        triplets = sample_triplets(table, ["collar", "sleeve", "length"], 3, seed=0, epoch=0)
    assert [r.getMessage() for r in caplog.records if r.name == "agman.data.triplets"] == [
        "attribute excluded from triplets: collar: fewer than 2 values with training images (1)",
        "attribute excluded from triplets: sleeve: no value has 2 training images, nothing can anchor",
    ]
    assert triplets[:, 3].tolist() == [2, 2, 2]


def test_the_error_lists_every_excluded_attribute_separated_by_a_semicolon():
    table = _two_excluded_attributes_table(with_usable=False)
    with pytest.raises(ValueError) as excinfo:
        sample_triplets(table, ["collar", "sleeve"], 3, seed=0, epoch=0)
    assert str(excinfo.value) == ("no attribute can form triplets: "
                                  "collar: fewer than 2 values with training images (1); "
                                  "sleeve: no value has 2 training images, nothing can anchor")
