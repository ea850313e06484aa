import numpy as np
import pytest

from agman.data.fashionai import DataFormatError
from agman.data.zappos import CONDITIONS, read_csn_filenames, read_csn_triplets


def write_csn(root, lines=None):
    (root / "tripletlists").mkdir(parents=True)
    (root / "filenames.json").write_text("Boots/Ankle/Brand/1.jpg\nShoes/Oxfords/Brand/2.jpg\nSandals/Flat/Brand/3.jpg\n")
    for i, name in enumerate(CONDITIONS):
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
