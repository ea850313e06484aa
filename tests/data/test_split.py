"""Tests for the seeded splits and the shared tail of reading a retrieval dataset (agman.data.split)."""

import logging

import numpy as np
import pandas as pd
import pytest

from agman.config import DataConfig, SplitConfig
from agman.data.attributes import Attribute
from agman.data.split import check_method, check_values, prepare_retrieval, split_by_partition, split_items, split_table


def test_split_ratios_roles_and_determinism(demo_table):
    table, _ = demo_table
    n = len(table)
    counts = table["split"].value_counts()
    assert counts["train"] == round(0.8 * n) and counts["valid"] == round(0.1 * n)
    assert counts.sum() == n
    for split in ("valid", "test"):
        part = table[table["split"] == split]
        assert (part["role"] == "query").sum() == round(0.2 * len(part))
        assert set(part["role"]) == {"query", "candidate"}
    assert set(table.loc[table["split"] == "train", "role"]) == {"train"}
    again = split_items(table.drop(columns=["split", "role"]), SplitConfig(seed=1))
    pd.testing.assert_frame_equal(again, table)
    other = split_items(table.drop(columns=["split", "role"]), SplitConfig(seed=2))
    assert not other["split"].equals(table["split"])


def test_split_rejects_bad_ratios(demo_table):
    with pytest.raises(ValueError, match="must be 1"):
        split_items(demo_table[0], SplitConfig(train=0.9, valid=0.1, test=0.1))


def test_split_keeps_every_row_of_an_image_together():
    paths = [f"img/{i // 3}.jpg" for i in range(90)]  # 30 images x 3 attribute types
    table = pd.DataFrame({"path": paths, "attribute_index": [i % 3 for i in range(90)]})
    out = split_items(table, SplitConfig(seed=2))
    per_image = out.groupby("path")[["split", "role"]].nunique()
    assert (per_image == 1).all().all()
    assert out.drop_duplicates("path")["split"].value_counts().to_dict() == {"train": 24, "valid": 3, "test": 3}


def test_split_by_image_matches_a_row_split_when_every_row_is_its_own_image():
    table = pd.DataFrame({"path": [f"{i}.jpg" for i in range(50)]})
    out = split_items(table, SplitConfig(seed=5))
    rng = np.random.default_rng(5)  # the row split this project used before splitting by image
    order = rng.permutation(50)
    assert set(out.loc[order[:40], "split"]) == {"train"}
    assert set(out.loc[order[40:45], "split"]) == {"valid"} and set(out.loc[order[45:], "split"]) == {"test"}


def test_split_by_partition():
    table = pd.DataFrame({"path": ["a", "a", "b", "c", "d", "e"],
                          "partition": ["train", "train", "val", "test", "test", "val"]})
    out = split_by_partition(table, SplitConfig())
    assert list(out["split"]) == ["train", "train", "valid", "test", "test", "valid"]
    assert set(out.loc[out["split"] != "train", "role"]) <= {"query", "candidate"}
    with pytest.raises(ValueError, match="unknown evaluation status 'dev'"):
        split_by_partition(table.assign(partition="dev"), SplitConfig())


def test_values_without_images_warn_and_a_type_without_images_stops(caplog):
    attributes = (Attribute("colour", ("red", "green", "blue")), Attribute("size", ("s", "m")))
    table = pd.DataFrame({"attribute_index": [0, 0, 1], "value": [0, 0, 1]})
    with caplog.at_level(logging.WARNING):
        check_values(table, attributes)
    assert "3 attribute values have no image" in caplog.text
    assert "colour/green" in caplog.text and "colour/blue" in caplog.text and "size/s" in caplog.text
    with pytest.raises(ValueError, match="attribute type size has no annotated image"):
        check_values(table[table["attribute_index"] == 0], attributes)


@pytest.mark.parametrize("method, supported, message", [
    ("asen", ("official",), "data.split.method: asen is FashionAI's published split; data.dataset is 'd'"),
    ("official", ("asen",), "data.split.method: official is DeepFashion's evaluation partition; data.dataset is 'd'"),
    ("official", (), "official is DeepFashion's"),
])
def test_a_dataset_refuses_another_datasets_split_method(method, supported, message):
    with pytest.raises(ValueError, match=message):
        check_method(method, supported, "d")
    check_method("random", supported, "d")
    check_method(method, (method,), "d")


def test_split_table_dispatches_on_the_method():
    table = pd.DataFrame({"path": [f"{i}.jpg" for i in range(20)], "partition": ["train", "val", "test", "train"] * 5})
    pd.testing.assert_frame_equal(split_table(table, SplitConfig(seed=3)), split_items(table, SplitConfig(seed=3)))
    pd.testing.assert_frame_equal(split_table(table, SplitConfig(method="official")),
                                  split_by_partition(table, SplitConfig(method="official")))
    assert split_table(table, SplitConfig(method="asen")) is table  # ASEN's split comes with the table
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        split_table(table, SplitConfig(method="nope"))


def test_prepare_retrieval_checks_splits_and_describes():
    attributes = (Attribute("colour", ("red", "green")),)
    table = pd.DataFrame({"path": [f"{i}.jpg" for i in range(10)], "attribute": "colour", "attribute_index": 0,
                          "value": [0, 1] * 5})
    data = prepare_retrieval(table, attributes, DataConfig(dataset="demo_fashionai", split=SplitConfig(seed=1)),
                             stats={"n": 1})
    pd.testing.assert_frame_equal(data.table, split_items(table, SplitConfig(seed=1)))
    assert data.task == "retrieval" and data.attributes == ["colour"]
    assert data.meta == {"dataset": "demo_fashionai", "stats": {"n": 1},
                         "attributes": [{"name": "colour", "values": ["red", "green"]}]}
    with pytest.raises(ValueError, match="has no annotated image"):
        prepare_retrieval(table, attributes + (Attribute("size", ("s",)),), DataConfig(), stats={})
