"""Tests for the UT-Zappos50K / CSN readers and the reader into the prepared data (agman.data.zappos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agman.config import DataConfig, SplitConfig
from agman.data.errors import DataFormatError
from agman.data.zappos import (
    CONDITION_NAMES,
    CONDITIONS,
    read,
    read_csn_filenames,
    read_csn_triplets,
    read_zappos,
    read_zappos_meta,
)


def write_csn(root, lines=None):
    (root / "tripletlists").mkdir(parents=True)
    (root / "filenames.json").write_text("Boots/Ankle/Brand/1.jpg\nShoes/Oxfords/Brand/2.jpg\n"
                                         "Sandals/Flat/Brand/3.jpg\n")
    for i, name in enumerate(CONDITION_NAMES):
        for split in ("train", "val", "test"):
            text = (lines or {}).get((name, split), f"{i % 3} {(i + 1) % 3} {(i + 2) % 3}\n")
            (root / "tripletlists" / f"{name}_tripletlist_{split}.txt").write_text(text)


def test_csn_triplets_are_reordered_to_anchor_close_far(tmp_path):
    write_csn(tmp_path)
    names = read_csn_filenames(tmp_path)
    assert names[1] == "Shoes/Oxfords/Brand/2.jpg"
    triplets = read_csn_triplets(tmp_path, "test", len(names))
    # File line "a b c" = (anchor, far, close); condition 0 wrote "0 1 2".
    np.testing.assert_array_equal(triplets[0], [0, 2, 1, 0])
    assert triplets[:, 3].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("text, message", [
    ("0 1 7\n", r"heel_tripletlist_val.txt:1: index 7 out of range"),
    ("0 1\n", "expected 'anchor far close'"),
    ("0 x 1\n", "non-integer"),
])
def test_bad_triplet_lines_name_file_and_line(tmp_path, text, message):
    write_csn(tmp_path, {("heel", "val"): text})
    with pytest.raises(DataFormatError, match=message):
        read_csn_triplets(tmp_path, "val", 3)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="filenames.json"):
        read_csn_filenames(tmp_path)
    (tmp_path / "filenames.json").write_text('["a.jpg"]\n')
    with pytest.raises(DataFormatError, match="filenames.json:1"):
        read_csn_filenames(tmp_path)
    with pytest.raises(FileNotFoundError, match="class_tripletlist_train.txt"):
        read_csn_triplets(tmp_path, "train", 1)
    with pytest.raises(KeyError, match="split"):
        read_csn_triplets(tmp_path, "valid", 1)


# --- UT-Zappos50K metadata and the full CSN reader -------------------------------------------

# Rows 0-2 are train, 3-5 val, 6-8 test, 9 unused; 555.12 has no metadata row.
FILENAMES = """\
Boots/Ankle/Ashby/7965307.5291.jpg
Shoes/Oxfords/Marlow Creek/100627.72.jpg
Sandals/Flat/Ashby/8011.1.jpg
Boots/Mid-Calf/Tanner Row/9.99.jpg
Slippers/Slipper Flats/Northfield/555.12.jpg
Shoes/Loafers/Ashby/42.7.jpg
Sandals/Heel/Northfield/3141.59.jpg
Boots/Knee High/Ashby/2718.28.jpg
Shoes/Oxfords/Vale and Stone/1618.3.jpg
Slippers/Slipper Heels/Ashby/1414.21.jpg
"""
# Out of filenames.json order, with one row for an image the CSN split does not list.
META = """\
CID,Category,SubCategory,HeelHeight,Insole,Closure,Gender,Material,ToeStyle
100627-72,Shoes,Oxfords,Under 1in,Padded,Lace up,Men,Leather;Rubber,"Capped Toe, Wingtip"
7965307-5291,Boots,Ankle,1in - 1 3/4in,,Zipper,Women,Suede,
8011-1,Sandals,Flat,Flat,Cushioned,Buckle,Girls,,Round Toe
9-99,Boots,Mid-Calf,Flat,,Zipper;Lace up,Men,Leather,Round Toe
42-7,Shoes,Loafers,Under 1in,Padded,Slip-On,Women,Canvas,Round Toe
3141-59,Sandals,Heel,2in - 2 3/4in,,Buckle,Women,Synthetic,Pointed Toe
2718-28,Boots,Knee High,Flat,Removable,Zipper,Boys,Leather,Round Toe
1618-3,Shoes,Oxfords,Flat,,Lace up,Men;Women,Leather,Capped Toe
1414-21,Slippers,Slipper Heels,Under 1in,Padded,Slip-On,Women,Suede,Round Toe
99999-1,Shoes,Loafers,Flat,,Slip-On,Boys,Canvas,Round Toe
"""
TRIPLETS = {"train": "0 1 2\n1 2 0\n", "val": "3 4 5\n", "test": "6 7 8\n"}


def write_zappos(root: Path, meta: str = META, lines: dict | None = None) -> Path:
    """A tiny UT-Zappos50K + CSN root in the genuine layout; ``lines`` overrides triplet lists."""
    for name in FILENAMES.splitlines():
        image = root / "ut-zap50k-images" / name
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(b"\xff\xd8\xff\xd9")
    (root / "filenames.json").write_text(FILENAMES)
    (root / "ut-zap50k-data").mkdir()
    (root / "ut-zap50k-data" / "meta-data.csv").write_text(meta)
    (root / "tripletlists").mkdir()
    for name in CONDITION_NAMES:
        for split, text in TRIPLETS.items():
            text = (lines or {}).get((name, split), text)
            (root / "tripletlists" / f"{name}_tripletlist_{split}.txt").write_text(text)
    return root


def test_meta_keeps_multi_values_quoted_commas_and_empty_fields(tmp_path):
    meta = read_zappos_meta(write_zappos(tmp_path))
    assert meta.index.name == "CID" and len(meta) == 10
    assert list(meta.columns) == ["Category", "SubCategory", "HeelHeight", "Insole", "Closure", "Gender",
                                  "Material", "ToeStyle"]
    assert meta.loc["100627-72", "Material"] == "Leather;Rubber"
    assert meta.loc["100627-72", "ToeStyle"] == "Capped Toe, Wingtip"
    assert meta.loc["7965307-5291", "Insole"] == "" and meta.loc["7965307-5291", "ToeStyle"] == ""
    assert meta.loc["8011-1", "Material"] == ""
    assert all(isinstance(v, str) for v in meta.to_numpy().ravel())


def test_meta_columns_may_come_in_any_order(tmp_path):
    lines = META.splitlines()
    reordered = "\n".join(",".join(reversed(line.split(","))) for line in [lines[0], lines[2]]) + "\n"
    meta = read_zappos_meta(write_zappos(tmp_path, meta=reordered))
    assert meta.loc["7965307-5291", "Category"] == "Boots"
    assert meta.loc["7965307-5291", "Gender"] == "Women"


def test_read_zappos_table_splits_and_stats(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="agman.data.zappos"):
        table, triplets, stats = read_zappos(write_zappos(tmp_path))
    assert len(table) == 10
    assert list(table.columns) == ["path", "cid", *(c.table_column for c in CONDITIONS), "split"]
    assert table.loc[1, "path"] == "ut-zap50k-images/Shoes/Oxfords/Marlow Creek/100627.72.jpg"
    assert table.loc[1].drop("path").to_dict() == {
        "cid": "100627-72", "category": "Shoes", "closure": "Lace up", "gender": "Men",
        "heel_height": "Under 1in", "split": "train"}
    assert table["split"].tolist() == ["train"] * 3 + ["val"] * 3 + ["test"] * 3 + ["unused"]
    # The image without a metadata row keeps empty values and is counted in a single warning.
    assert table.loc[4, ["category", "closure", "gender", "heel_height"]].tolist() == ["", "", "", ""]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1 of 10 images" in warnings[0].getMessage()
    assert "555-12" in warnings[0].getMessage()
    assert stats == {
        "images": 10, "images_without_metadata": 1, "images_in_several_splits": 0,
        "triplets": {"train": dict.fromkeys(CONDITION_NAMES, 2), "val": dict.fromkeys(CONDITION_NAMES, 1),
                     "test": dict.fromkeys(CONDITION_NAMES, 1)},
        "images_per_split": {"train": 3, "val": 3, "test": 3, "unused": 1},
    }
    # File line "a b c" = (anchor, far, close) -> (anchor, close, far, condition).
    np.testing.assert_array_equal(triplets["val"], [[3, 5, 4, c] for c in range(4)])
    np.testing.assert_array_equal(triplets["train"][:2], [[0, 2, 1, 0], [1, 0, 2, 0]])
    assert {split: t.dtype for split, t in triplets.items()} == dict.fromkeys(("train", "val", "test"), np.int64)


def test_image_in_several_splits_gets_the_first_and_one_warning(tmp_path, caplog):
    root = write_zappos(tmp_path, lines={("class", "val"): "3 0 5\n", ("gender", "test"): "6 9 3\n"})
    with caplog.at_level("WARNING", logger="agman.data.zappos"):
        table, _, stats = read_zappos(root)
    assert table.loc[0, "split"] == "train" and table.loc[3, "split"] == "val" and table.loc[9, "split"] == "test"
    assert stats["images_in_several_splits"] == 2
    several = [r.getMessage() for r in caplog.records if "several splits" in r.getMessage()]
    assert len(several) == 1 and several[0].startswith("2 images")


def _append(text: str, line: str) -> tuple[str, int]:
    return text + line, text.count("\n") + 1


@pytest.mark.parametrize("meta, message", [
    (_append(META, "77-7,Shoes,Oxfords,Flat\n"), "expected 9 comma-separated fields, got 4"),
    (_append(META, "8011-1,Sandals,Flat,Flat,,Buckle,Boys,,\n"), r"duplicate CID '8011-1' \(first on line 4\)"),
    ((META.replace("ToeStyle", "Toe", 1), 1), "unknown header column"),
    ((META.replace(",ToeStyle", "", 1), 1), "header lacks column"),
    ((META.replace("CID,Category", "CID,CID", 1), 1), "column 'CID' appears twice"),
])
def test_bad_meta_names_file_and_line(tmp_path, meta, message):
    text, line_no = meta
    with pytest.raises(DataFormatError, match=rf"meta-data.csv:{line_no}: {message}"):
        read_zappos_meta(write_zappos(tmp_path, meta=text))


def test_missing_meta_file(tmp_path):
    root = write_zappos(tmp_path)
    (root / "ut-zap50k-data" / "meta-data.csv").unlink()
    with pytest.raises(FileNotFoundError, match="meta-data.csv"):
        read_zappos(root)


def test_missing_image_names_filenames_line(tmp_path):
    root = write_zappos(tmp_path)
    (root / "ut-zap50k-images" / "Slippers" / "Slipper Flats" / "Northfield" / "555.12.jpg").unlink()
    (root / "ut-zap50k-images" / "Slippers" / "Slipper Heels" / "Ashby" / "1414.21.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"filenames.json:5: 2 listed images are missing .* first: "
                                                r"ut-zap50k-images/Slippers/Slipper Flats/Northfield/555.12.jpg"):
        read_zappos(root)
    table, _, _ = read_zappos(root, check_images=False)
    assert len(table) == 10


@pytest.mark.parametrize("lines, error, message", [
    ({("closure", "test"): "6 7 10\n"}, DataFormatError, r"closure_tripletlist_test.txt:1: index 10 out of range"),
    ({("closure", "test"): "6 7 8\n6 x 8\n"}, DataFormatError, r"closure_tripletlist_test.txt:2: non-integer"),
    ({("heel", "train"): "0 1 2\n\n0 1\n"}, DataFormatError, r"heel_tripletlist_train.txt:3: expected 'anchor"),
    ({("gender", "val"): "\n"}, DataFormatError, r"gender_tripletlist_val.txt: no triplets"),
])
def test_bad_triplet_lists_through_read_zappos(tmp_path, lines, error, message):
    with pytest.raises(error, match=message):
        read_zappos(write_zappos(tmp_path, lines=lines))


def test_missing_triplet_list_through_read_zappos(tmp_path):
    root = write_zappos(tmp_path)
    (root / "tripletlists" / "gender_tripletlist_val.txt").unlink()
    with pytest.raises(FileNotFoundError, match="gender_tripletlist_val.txt"):
        read_zappos(root)


def test_read_renames_val_to_valid_and_ignores_the_split_method(tmp_path):
    root = write_zappos(tmp_path)
    table, triplets, stats = read_zappos(root)
    for split in (SplitConfig(), SplitConfig(method="asen"), SplitConfig(method="official")):
        data = read(DataConfig(dataset="demo_zappos", root=str(root), split=split))
        assert data.task == "triplets" and data.attributes == list(CONDITION_NAMES)
        assert set(data.triplets) == {"train", "valid", "test"}
        np.testing.assert_array_equal(data.triplets["valid"], triplets["val"])
        assert data.table["split"].tolist() == table["split"].replace({"val": "valid"}).tolist()
        assert data.meta == {"dataset": "demo_zappos", "stats": stats,
                             "attributes": [{"name": name, "values": []} for name in CONDITION_NAMES]}
