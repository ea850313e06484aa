"""Tests for FashionAI's label.csv parser, ASEN's published split and the reader into the prepared
data (agman.data.fashionai)."""

from collections import Counter

import pytest

from agman.config import DataConfig, SplitConfig
from agman.data.attributes import Attribute
from agman.data.errors import DataFormatError
from agman.data.fashionai import (
    FASHIONAI,
    read,
    read_asen,
    read_asen_eval_split,
    read_asen_split,
    read_fashionai_labels,
)
from tests.helpers import external

ATTRS = (Attribute("collar_design", ("a", "b", "c")), Attribute("skirt_length", ("x", "y")))
#: ASEN's published FashionAI split (filenames_*.txt, query_*.txt, candidate_*.txt) with FashionAI's
#: label_valid.csv and label_test.csv beside it; the tests on the real files run when it is set.
FIXTURES = external("AGMAN_ASEN_FASHIONAI")
needs_fixtures = pytest.mark.skipif(FIXTURES is None or not FIXTURES.is_dir(),
                                    reason="set AGMAN_ASEN_FASHIONAI to ASEN's FashionAI split folder")


def write_labels(root, lines, make_images=True):
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / "label.csv").write_text("\n".join(lines) + "\n")
    if make_images:
        for line in lines:
            path = root / line.split(",")[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")


def test_parser_reads_value_as_position_of_y_and_keeps_m_rows(tmp_path):
    write_labels(tmp_path, ["Images/collar_design_labels/a.jpg,collar_design_labels,nny",
                            "Images/skirt_length_labels/b.jpg,skirt_length_labels,ym",
                            "Images/collar_design_labels/c.jpg,collar_design_labels,myn"])
    table = read_fashionai_labels(tmp_path, ATTRS)
    assert table["value"].tolist() == [2, 0, 1]
    assert table["attribute_index"].tolist() == [0, 1, 0]
    assert table["attribute"].tolist() == ["collar_design", "skirt_length", "collar_design"]


@pytest.mark.parametrize("line, message", [
    ("Images/collar_design_labels/a.jpg,collar_design_labels", "expected 3 comma-separated fields"),
    ("Images/collar_design_labels/a.jpg,collar_design_labels,nnn", "exactly one 'y'"),
    ("Images/collar_design_labels/a.jpg,collar_design_labels,yyn", "exactly one 'y'"),
    ("Images/collar_design_labels/a.jpg,collar_design_labels,nyx", "y/n/m"),
    ("Images/collar_design_labels/a.jpg,collar_design_labels,ny", "3 characters"),
    ("Images/hat_labels/a.jpg,hat_labels,yn", "unknown task 'hat_labels'"),
])
def test_parser_names_file_and_line_of_malformed_rows(tmp_path, line, message):
    write_labels(tmp_path, ["Images/skirt_length_labels/b.jpg,skirt_length_labels,yn", line], make_images=False)
    with pytest.raises(DataFormatError, match=r"label\.csv:2: .*" + message):
        read_fashionai_labels(tmp_path, ATTRS, check_images=False)


def test_parser_reports_missing_images_and_missing_file(tmp_path):
    write_labels(tmp_path, ["Images/skirt_length_labels/b.jpg,skirt_length_labels,yn"], make_images=False)
    with pytest.raises(FileNotFoundError, match="b.jpg"):
        read_fashionai_labels(tmp_path, ATTRS)
    with pytest.raises(FileNotFoundError, match="label file not found"):
        read_fashionai_labels(tmp_path / "nowhere", ATTRS)


def test_attribute_list():
    assert [a.name for a in FASHIONAI][:2] == ["skirt_length", "sleeve_length"]
    assert [len(a.values) for a in FASHIONAI] == [6, 9, 8, 6, 5, 5, 10, 5]


@needs_fixtures
def test_real_fashionai_label_files_parse():
    fixtures = FIXTURES
    for split in ("valid", "test"):
        table = read_fashionai_labels(fixtures, FASHIONAI, check_images=False,
                                      label_file=fixtures / f"label_{split}.csv")
        assert len(table) == 18_000
    # The value index equals ASEN's: check it against query_test.txt through filenames_test.txt.
    names = (fixtures / "filenames_test.txt").read_text().split()
    by_path = dict(zip(table["path"], zip(table["attribute_index"], table["value"], strict=True), strict=True))
    for line in (fixtures / "query_test.txt").read_text().splitlines()[:500]:
        row, task, value = map(int, line.split())
        assert by_path[names[row].removeprefix("test/")] == (task, value)


@needs_fixtures
def test_real_asen_test_split_counts_and_consistency():
    table = read_asen_eval_split(FIXTURES, "test", FASHIONAI)
    queries, candidates = table[table["role"] == "query"], table[table["role"] == "candidate"]
    assert (len(queries), len(candidates)) == (3600, 14400)
    per_task = Counter(queries["attribute_index"])
    assert [per_task[i] for i in range(8)] == [422, 623, 535, 422, 341, 289, 703, 265]
    assert table["path"].nunique() == 18000
    # The value index equals the position of `y` in FashionAI's label string.
    labels = read_fashionai_labels(FIXTURES, FASHIONAI, check_images=False, label_file=FIXTURES / "label_test.csv")
    merged = table.merge(labels, on="path", suffixes=("", "_label"))
    assert len(merged) == 18000
    assert (merged["value"] == merged["value_label"]).all()
    assert (merged["attribute_index"] == merged["attribute_index_label"]).all()


@needs_fixtures
def test_real_asen_valid_split_parses():
    table = read_asen_eval_split(FIXTURES, "valid", FASHIONAI)
    assert table["path"].nunique() == len(table) and set(table["role"]) == {"query", "candidate"}


def write_split(folder, train_labels="0 1 3\n1 0 2 6 5\n", query="0 1 3\n", candidate="1 6 9\n"):
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        (folder / f"filenames_{split}.txt").write_text(
            f"{split}/Images/sleeve_length_labels/a{split}.jpg\n{split}/Images/neckline_design_labels/b{split}.jpg\n")
    (folder / "label_train.txt").write_text(train_labels)
    for split in ("valid", "test"):
        (folder / f"query_{split}.txt").write_text(query)
        (folder / f"candidate_{split}.txt").write_text(candidate)


def test_full_split_reader_on_written_files(tmp_path):
    write_split(tmp_path)
    table = read_asen_split(tmp_path, FASHIONAI)
    assert table["split"].value_counts().to_dict() == {"train": 3, "valid": 2, "test": 2}
    train = table[table["split"] == "train"]
    # Row 1 of label_train carries two (task, value) pairs: two entries of one image.
    assert train["path"].tolist() == ["Images/sleeve_length_labels/atrain.jpg",
                                      "Images/neckline_design_labels/btrain.jpg",
                                      "Images/neckline_design_labels/btrain.jpg"]
    assert train["attribute_index"].tolist() == [1, 0, 6] and train["value"].tolist() == [3, 2, 5]


@pytest.mark.parametrize("field, text, message", [
    ("query", "5 1 3\n", "row 5 out of range"),
    ("query", "0 9 3\n", "task index 9 out of range"),
    ("query", "0 1 42\n", "value 42 out of range for sleeve_length"),
    ("query", "0 1\n", "expected '<row> <task> <value>'"),
    ("query", "0 x 1\n", "non-integer"),
    ("candidate", "0 1 3\n", "both query and candidate"),
    ("train_labels", "0 1 3 4\n", "pairs"),
])
def test_malformed_split_lines_are_named(tmp_path, field, text, message):
    write_split(tmp_path, **{field: text})
    with pytest.raises(DataFormatError, match=message):
        read_asen_split(tmp_path, FASHIONAI)


def test_missing_split_file_and_bad_prefix(tmp_path):
    with pytest.raises(FileNotFoundError, match="filenames_train.txt"):
        read_asen_split(tmp_path, FASHIONAI)
    write_split(tmp_path)
    (tmp_path / "filenames_valid.txt").write_text("Images/sleeve_length_labels/a.jpg\n")
    with pytest.raises(DataFormatError, match=r"filenames_valid.txt:1: expected a path starting with valid/Images/"):
        read_asen_split(tmp_path, FASHIONAI)


def _with_images(folder, root):
    """The images ASEN's split files in ``folder`` name, as empty files under ``root``."""
    for split in ("train", "valid", "test"):
        for line in (folder / f"filenames_{split}.txt").read_text().split():
            path = root / line.removeprefix(f"{split}/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")


def test_read_asen_checks_the_images(tmp_path):
    write_split(tmp_path / "asen")
    with pytest.raises(FileNotFoundError, match=r"6 images of the ASEN split are missing under data.root"):
        read_asen(tmp_path / "asen", tmp_path / "root")
    _with_images(tmp_path / "asen", tmp_path / "root")
    assert read_asen(tmp_path / "asen", tmp_path / "root").equals(read_asen_split(tmp_path / "asen", FASHIONAI))


def test_read_with_the_asen_split_keeps_its_split_and_roles(tmp_path):
    cfg = DataConfig(dataset="fashionai", root=str(tmp_path / "root"),
                     split=SplitConfig(method="asen", asen_dir=str(tmp_path / "asen")))
    write_split(tmp_path / "asen")
    _with_images(tmp_path / "asen", tmp_path / "root")
    with pytest.raises(ValueError, match="attribute type coat_length has no annotated image"):
        read(cfg)  # the split's entries are checked as label.csv's are
    # Row 0 of label_train annotated for every task, so each has an image.
    write_split(tmp_path / "asen", train_labels="0 " + " ".join(f"{t} 0" for t in range(8)) + "\n1 0 2 6 5\n")
    data = read(cfg)
    assert data.table.equals(read_asen_split(tmp_path / "asen", FASHIONAI))
    assert data.task == "retrieval" and data.attributes == [a.name for a in FASHIONAI]
    assert data.meta == {"dataset": "fashionai", "stats": {},
                         "attributes": [{"name": a.name, "values": list(a.values)} for a in FASHIONAI]}


def test_read_with_a_random_split(tmp_path):
    lines = [f"Images/collar_design_labels/{i}.jpg,collar_design_labels,{'nyn' if i % 2 else 'ynn'}" for i in range(10)]
    lines += [f"Images/skirt_length_labels/{i}.jpg,skirt_length_labels,{'ny' if i % 2 else 'yn'}" for i in range(10)]
    write_labels(tmp_path, lines)
    data = read(DataConfig(dataset="fashionai", root=str(tmp_path), split=SplitConfig(seed=4)), attributes=ATTRS)
    assert data.table["split"].value_counts().to_dict() == {"train": 16, "valid": 2, "test": 2}
    assert data.attributes == ["collar_design", "skirt_length"]
    with pytest.raises(ValueError, match="official is DeepFashion's evaluation partition; data.dataset is 'fashionai'"):
        read(DataConfig(dataset="fashionai", root=str(tmp_path), split=SplitConfig(method="official")), ATTRS)
