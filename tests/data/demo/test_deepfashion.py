"""Tests for the DeepFashion stand-in's writer (agman.data.demo.deepfashion)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from agman.data.deepfashion import ATTR_CLOTH_FILE as CLOTH
from agman.data.deepfashion import ATTR_IMG_FILE as IMG
from agman.data.deepfashion import DEEPFASHION_TYPES, read_deepfashion
from agman.data.deepfashion import PARTITION_FILE as PARTITION
from agman.data.demo.deepfashion import DEMO_DEEPFASHION_SHOWN, DEMO_DEEPFASHION_UNUSED, write_demo_deepfashion
from agman.data.demo.garment import GARMENT_ATTRIBUTES

N_DEMO = 60


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo_deepfashion") / "deepfashion"
    write_demo_deepfashion(root, n_images=N_DEMO, size=32, seed=5)
    return root


def test_demo_mapping_matches_renderer() -> None:
    renderer = dict(GARMENT_ATTRIBUTES)
    for type_name, (shown_by, names) in DEMO_DEEPFASHION_SHOWN.items():
        assert shown_by == "fabric" or len(renderer[shown_by]) == len(names)
        assert len(names) == 4 and any(" " in n or "-" in n for n in names)
        assert not set(names) & set(DEMO_DEEPFASHION_UNUSED[type_name])


def test_demo_same_seed_is_byte_identical(demo: Path, tmp_path: Path) -> None:
    write_demo_deepfashion(tmp_path / "again", n_images=N_DEMO, size=32, seed=5)
    assert _all_files(demo) == _all_files(tmp_path / "again")


def test_demo_different_seed_differs(demo: Path, tmp_path: Path) -> None:
    write_demo_deepfashion(tmp_path / "other", n_images=N_DEMO, size=32, seed=6)
    ours, theirs = _all_files(demo), _all_files(tmp_path / "other")
    assert ours[IMG] != theirs[IMG]
    assert [ours[p] for p in sorted(ours) if p.endswith(".jpg")][0] != \
        [theirs[p] for p in sorted(theirs) if p.endswith(".jpg")][0]


def test_demo_replaces_atomically(tmp_path: Path) -> None:
    out = tmp_path / "deepfashion"
    write_demo_deepfashion(out, n_images=5, size=16, seed=1)
    (out / "stale.txt").write_text("from an earlier run")
    write_demo_deepfashion(out, n_images=5, size=16, seed=2)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deepfashion"]


def test_demo_genuine_layout(demo: Path) -> None:
    heads = {relative: (demo / relative).read_text().splitlines()[:2] for relative in (CLOTH, IMG, PARTITION)}
    n_attributes = sum(len(v[1]) for v in DEMO_DEEPFASHION_SHOWN.values()) + \
        sum(len(v) for v in DEMO_DEEPFASHION_UNUSED.values())
    assert heads == {CLOTH: [str(n_attributes), "attribute_name  attribute_type"],
                     IMG: [str(N_DEMO), "image_name  attribute_labels"],
                     PARTITION: [str(N_DEMO), "image_name  evaluation_status"]}
    paths = [line.split()[0] for line in (demo / IMG).read_text().splitlines()[2:]]
    assert all(re.fullmatch(r"img/Demo_[A-Za-z-]+_[A-Za-z-]+_Dress/img_\d{8}\.jpg", p) for p in paths)
    with Image.open(demo / paths[0]) as image:
        assert image.size == (32, 32)
    statuses = pd.Series([line.split()[1] for line in (demo / PARTITION).read_text().splitlines()[2:]])
    assert statuses.value_counts().to_dict() == {"train": 42, "val": 9, "test": 9}


def test_demo_parses_with_kept_and_dropped_pairs(demo: Path) -> None:
    table, attributes, stats = read_deepfashion(demo)
    assert set(table["attribute"]) == set(DEEPFASHION_TYPES)
    assert all(stats["rows"][t] > 0 for t in DEEPFASHION_TYPES)
    assert sum(stats["no_positive"].values()) > 0 and sum(stats["several_positives"].values()) > 0
    for t, attribute in enumerate(attributes):
        kept_names = {attribute.values[v] for v in table.loc[table["attribute_index"] == t, "value"]}
        assert kept_names <= set(DEMO_DEEPFASHION_SHOWN[attribute.name][1])
    assert set(table["partition"]) == {"train", "val", "test"}
