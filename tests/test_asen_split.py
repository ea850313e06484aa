from collections import Counter

import pytest

from agman.data.asen_split import read_asen_eval_split, read_asen_split
from agman.data.attributes import FASHIONAI
from agman.data.fashionai import DataFormatError, read_fashionai_labels

from tests.helpers import SHARED

FIXTURES = SHARED / "fixtures" / "asen-fashionai"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="needs ../shared/fixtures/asen-fashionai")


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

