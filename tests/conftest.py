"""Shared fixtures: a tiny rendered demo dataset and its prepared table, made once per session;
tiny trained runs for the figures and search tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from agman.config import SplitConfig
from agman.data.demo.fashionai import write_demo_fashionai
from agman.data.fashionai import read_fashionai_labels
from agman.data.prepared import PreparedData, cache_prepared
from agman.data.registry import dataset_attributes
from agman.data.split import split_items
from tests.helpers import train_tiny_run


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "fashionai"
    write_demo_fashionai(root, images_per_attribute=24, size=48, seed=3)
    return root


@pytest.fixture(scope="session")
def demo_table(demo_root):
    attributes = dataset_attributes("demo_fashionai")
    table = split_items(read_fashionai_labels(demo_root, attributes), SplitConfig(seed=1))
    return table, [a.name for a in attributes]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory, demo_root, demo_table) -> PreparedData:
    """The demo table through the real cache stage, at 32 px."""
    table, names = demo_table
    folder = tmp_path_factory.mktemp("cached") / "data"
    return cache_prepared(PreparedData(table, names, "retrieval"), demo_root, folder, 32, fmt="array")


@pytest.fixture(scope="session")
def tiny_trainer():
    """``train_tiny_run``, for test modules that train a run of their own data."""
    return train_tiny_run


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A project folder laid out as the pipeline writes it: the demo FashionAI in data/demo/fashionai,
    through the cache stage (value names included) in data/fashionai/cache, and tiny trained runs of
    AG-MAN and CSN with their curves (runs/, reports/curves/). 150 images per attribute type leave
    2-4 test queries and 9-16 test candidates per type, enough for every retrieval figure."""
    project = tmp_path_factory.mktemp("project")
    root = project / "data" / "demo" / "fashionai"
    write_demo_fashionai(root, images_per_attribute=150, size=48, seed=3)
    attributes = dataset_attributes("demo_fashionai")
    table = split_items(read_fashionai_labels(root, attributes), SplitConfig(seed=1))
    meta = {"dataset": "demo_fashionai", "attributes": [{"name": a.name, "values": list(a.values)} for a in attributes]}
    data = cache_prepared(PreparedData(table, [a.name for a in attributes], "retrieval", meta=meta), root,
                          project / "data" / "fashionai" / "cache", 32, fmt="array")
    for variant in ("agman", "csn"):
        train_tiny_run(data, root, project / "runs" / "fashionai" / variant / "seed0",
                       project / "reports" / "curves" / "fashionai" / variant / "seed0.csv", name=variant)
    return project
