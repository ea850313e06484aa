"""Shared fixtures: a tiny rendered demo dataset and its prepared table, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from agman.config import SplitConfig
from agman.data.attributes import dataset_attributes
from agman.data.demo import write_demo_fashionai
from agman.data.fashionai import read_fashionai_labels
from agman.data.prepared import PreparedData, cache_prepared
from agman.data.split import split_items

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


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
    return cache_prepared(PreparedData(table, names, "retrieval"), demo_root, folder, 32, "array")
