"""Tests for the UT-Zappos50K stand-in's writer (agman.data.demo.zappos)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agman.data.demo.zappos import DEMO_ZAPPOS_CONDITIONS, csn_triplet_counts, write_demo_zappos
from agman.data.zappos import CONDITION_NAMES, CONDITIONS, read_csn_filenames, read_zappos, read_zappos_meta

N_DEMO = 60
DEMO_TRIPLETS = (40, 10, 10)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo_zappos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo_zappos") / "zappos"
    write_demo_zappos(root, N_DEMO, DEMO_TRIPLETS, size=24, seed=5)
    return root


def test_demo_conditions_follow_csn_order():
    assert tuple(c[0] for c in DEMO_ZAPPOS_CONDITIONS) == CONDITION_NAMES
    assert tuple(c[1] for c in DEMO_ZAPPOS_CONDITIONS) == tuple(c.meta_column for c in CONDITIONS)
    assert {c[2] for c in DEMO_ZAPPOS_CONDITIONS} == {"skirt_length", "neckline_design", "sleeve_length", "texture"}


def test_demo_same_seed_is_byte_identical_and_other_seed_differs(demo_zappos, tmp_path):
    write_demo_zappos(tmp_path / "again", N_DEMO, DEMO_TRIPLETS, size=24, seed=5)
    assert _files(tmp_path / "again") == _files(demo_zappos)
    write_demo_zappos(tmp_path / "other", N_DEMO, DEMO_TRIPLETS, size=24, seed=6)
    assert (tmp_path / "other" / "filenames.json").read_bytes() != (demo_zappos / "filenames.json").read_bytes()


def test_demo_layout_and_metadata(demo_zappos):
    names = read_csn_filenames(demo_zappos)
    assert len(names) == N_DEMO
    images = sorted(str(p.relative_to(demo_zappos / "ut-zap50k-images"))
                    for p in (demo_zappos / "ut-zap50k-images").rglob("*.jpg"))
    assert images == sorted(names)
    for name in names:
        category, _, _, file_name = name.split("/")
        assert category in DEMO_ZAPPOS_CONDITIONS[0][3]
        product, style, ext = file_name.split(".")
        assert product.isdigit() and style.isdigit() and ext == "jpg"
    meta = read_zappos_meta(demo_zappos)
    assert len(meta) == N_DEMO - 1  # ~1% of the images have no row
    assert meta["ToeStyle"].str.contains(",").any()  # a quoted field
    assert (meta["Material"] == "").any() and meta["Material"].str.contains(";").any()


def test_demo_parses_and_triplets_match_its_metadata(demo_zappos):
    table, triplets, stats = read_zappos(demo_zappos)
    assert stats["images"] == N_DEMO and stats["images_without_metadata"] == 1
    assert stats["images_in_several_splits"] == 0
    assert stats["triplets"] == {split: dict.fromkeys(CONDITION_NAMES, n)
                                 for split, n in zip(("train", "val", "test"), DEMO_TRIPLETS, strict=True)}
    # 70/10/20 of 60 images; an image no triplet happened to draw would show as unused.
    per_split = stats["images_per_split"]
    assert per_split["train"] <= 42 and per_split["val"] <= 6 and per_split["test"] <= 12
    assert sum(per_split.values()) == N_DEMO
    assert table["split"].tolist() != sorted(table["split"])  # filenames.json is not ordered by split
    columns = [c.table_column for c in CONDITIONS]
    for split, rows in triplets.items():
        assert set(table.loc[rows[:, :3].ravel(), "split"]) == {split}
        for anchor, close, far, condition in rows:
            assert anchor != close
            values = table.loc[[anchor, close, far], columns[condition]].tolist()
            if "" in values:  # the image without a metadata row
                continue
            assert values[1] == values[0] and values[2] != values[0]


def test_demo_rewrite_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "zappos"
    write_demo_zappos(out, N_DEMO, (2, 1, 1), size=16, seed=1)
    before = _files(out)

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr("agman.data.demo.zappos.render_garment", broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_demo_zappos(out, N_DEMO, (2, 1, 1), size=16, seed=2)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["zappos"]


def test_demo_rejects_splits_too_small_for_triplets(tmp_path):
    with pytest.raises(ValueError, match="every split needs at least 5"):
        write_demo_zappos(tmp_path / "z", 20, (2, 1, 1), size=16, seed=1)
    with pytest.raises(ValueError, match="positive"):
        write_demo_zappos(tmp_path / "z", N_DEMO, (2, 0, 1), size=16, seed=1)


def test_val_and_test_lists_get_a_tenth_and_a_fifth_of_the_training_lines():
    assert csn_triplet_counts(2000) == (2000, 200, 400)
    assert csn_triplet_counts(4) == (4, 1, 1)  # at least one line each
