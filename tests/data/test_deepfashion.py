"""Tests for the DeepFashion parser and its reader into the prepared data (agman.data.deepfashion)."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agman.config import DataConfig, SplitConfig
from agman.data import deepfashion
from agman.data.deepfashion import (
    DEEPFASHION_TYPES,
    read,
    read_deepfashion,
    read_deepfashion_attributes,
    read_eval_partition,
)
from agman.data.errors import DataFormatError

CLOTH = "Anno/list_attr_cloth.txt"
IMG = "Anno/list_attr_img.txt"
PARTITION = "Eval/list_eval_partition.txt"

# (name, type number) in file order; the types are interleaved as in the real file.
ATTRIBUTES = [("a-line", 3), ("floral print", 1), ("denim", 2), ("v neck", 4), ("boho chic", 5),
              ("polka dot", 1), ("maxi", 3), ("faux leather", 2), ("crew neck", 4), ("street style", 5),
              ("animal print", 1)]
A1, A2, B1 = ("img/Floral_A-Line_Dress/img_00000001.jpg", "img/Floral_A-Line_Dress/img_00000002.jpg",
              "img/Dotted_Leather_Top/img_00000001.jpg")
# Non-default labels per image (everything else is -1) and the image's evaluation status.
IMAGES = {
    A1: ({"a-line": 1, "floral print": 1, "denim": 1, "v neck": 1, "boho chic": 1}, "train"),
    # texture: two positives; fabric: only a 0; style: no positive; part: v neck is 0.
    A2: ({"floral print": 1, "polka dot": 1, "denim": 0, "maxi": 1, "v neck": 0, "crew neck": 1}, "val"),
    # shape: two positives; animal print is 0.
    B1: ({"polka dot": 1, "faux leather": 1, "a-line": 1, "maxi": 1, "v neck": 1, "street style": 1,
          "animal print": 0}, "test"),
}
EXPECTED_ROWS = [
    (A1, "texture", 0, 0, "train"), (A1, "fabric", 1, 0, "train"), (A1, "shape", 2, 0, "train"),
    (A1, "part", 3, 0, "train"), (A1, "style", 4, 0, "train"),
    (A2, "shape", 2, 1, "val"), (A2, "part", 3, 1, "val"),
    (B1, "texture", 0, 1, "test"), (B1, "fabric", 1, 1, "test"), (B1, "part", 3, 0, "test"),
    (B1, "style", 4, 1, "test"),
]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 60, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _files(images: dict = IMAGES) -> dict[str, list[str]]:
    """The three annotation files in the genuine layout, count and header lines included."""
    names = [name for name, _ in ATTRIBUTES]
    return {
        CLOTH: [str(len(ATTRIBUTES)), "attribute_name  attribute_type"]
        + [f"{name:<29}{type_no}" for name, type_no in ATTRIBUTES],
        IMG: [str(len(images)), "image_name  attribute_labels"]
        + [f"{path:<50}" + " ".join(str(labels.get(name, -1)) for name in names)
           for path, (labels, _) in images.items()],
        PARTITION: [str(len(images)), "image_name  evaluation_status"]
        + [f"{path:<51}{status}" for path, (_, status) in images.items()],
    }


def _write(root: Path, files: dict[str, list[str]], images: bool = True) -> Path:
    for relative, lines in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("\n".join(lines) + "\n")
    if images:
        for path in IMAGES:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(_jpeg())
    return root


@pytest.fixture
def fixture_root(tmp_path: Path) -> Path:
    return _write(tmp_path / "deepfashion", _files())


def test_attribute_names_with_spaces_and_types(fixture_root: Path) -> None:
    _, attributes, _ = read_deepfashion(fixture_root)
    assert [a.name for a in attributes] == list(DEEPFASHION_TYPES)
    assert {a.name: a.values for a in attributes} == {
        "texture": ("floral print", "polka dot", "animal print"),
        "fabric": ("denim", "faux leather"),
        "shape": ("a-line", "maxi"),
        "part": ("v neck", "crew neck"),
        "style": ("boho chic", "street style"),
    }
    assert read_deepfashion_attributes(fixture_root) == attributes


def test_multi_label_policy_gives_exact_rows(fixture_root: Path) -> None:
    table, _, stats = read_deepfashion(fixture_root)
    assert list(table.columns) == ["path", "attribute", "attribute_index", "value", "partition"]
    assert list(table.itertuples(index=False, name=None)) == EXPECTED_ROWS
    assert stats == {
        "images": 3,
        "rows": {"texture": 2, "fabric": 2, "shape": 2, "part": 3, "style": 2},
        "no_positive": {"texture": 0, "fabric": 1, "shape": 0, "part": 0, "style": 1},
        "several_positives": {"texture": 1, "fabric": 0, "shape": 1, "part": 0, "style": 0},
        "values_without_rows": {"texture": 1, "fabric": 0, "shape": 0, "part": 0, "style": 0},
    }


def test_drops_are_logged_once(fixture_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="agman.data.deepfashion"):
        read_deepfashion(fixture_root)
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1
    assert "fabric 1/0" in dropped[0] and "texture 0/1" in dropped[0]


def test_read_eval_partition(fixture_root: Path) -> None:
    partition = read_eval_partition(fixture_root)
    assert partition.to_dict() == {A1: "train", A2: "val", B1: "test"}
    assert partition.index.name == "path"


def test_blank_and_crlf_lines_keep_line_numbers(tmp_path: Path) -> None:
    files = _files()
    files[IMG].insert(3, "   ")
    files[IMG][5] = files[IMG][5].replace(" 1", " 2", 1)
    root = _write(tmp_path, files)
    (root / IMG).write_bytes((root / IMG).read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(DataFormatError, match=r"list_attr_img\.txt:6: value 2 "):
        read_deepfashion(root)


# Six images read two lines at a time: chunks of lines 3-4, 5-6 and 7-8.
CHUNKED_IMAGES = {**IMAGES, **{f"img/Plain_Tee/img_{i:08d}.jpg": (IMAGES[A1][0], "train") for i in range(1, 4)}}


def test_chunked_parse_gives_the_unchunked_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _write(tmp_path, _files(CHUNKED_IMAGES), images=False)
    whole = read_deepfashion(root, check_images=False)[0]
    monkeypatch.setattr(deepfashion, "_CHUNK_LINES", 2)
    table = read_deepfashion(root, check_images=False)[0]
    assert list(table.itertuples(index=False, name=None)) == list(whole.itertuples(index=False, name=None))
    assert list(table.itertuples(index=False, name=None))[:len(EXPECTED_ROWS)] == EXPECTED_ROWS


@pytest.mark.parametrize("line_no", [3, 4, 5, 6, 7, 8],
                         ids=["first-chunk-start", "first-chunk-end", "middle-chunk-start", "middle-chunk-end",
                              "last-chunk-start", "last-chunk-end"])
@pytest.mark.parametrize(("edit", "problem"), [
    (lambda line: line.replace(" -1", " 2", 1), r"value 2 for attribute \d+ \('.+'\) is not one of 1, -1, 0"),
    (lambda line: line + " -1", r"12 values after the image name, expected 11"),
    (lambda line: line.rsplit(maxsplit=1)[0], r"10 values after the image name, expected 11"),
], ids=["value-2", "one-too-many", "one-too-few"])
def test_malformed_label_line_in_any_chunk_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      line_no: int, edit, problem: str) -> None:
    monkeypatch.setattr(deepfashion, "_CHUNK_LINES", 2)
    files = _files(CHUNKED_IMAGES)
    files[IMG][line_no - 1] = edit(files[IMG][line_no - 1])
    with pytest.raises(DataFormatError, match=rf"list_attr_img\.txt:{line_no}: {problem}") as error:
        read_deepfashion(_write(tmp_path, files, images=False), check_images=False)
    assert "\n" not in str(error.value)


def _replace(line_no: int, old: str, new: str):
    def edit(lines: list[str]) -> None:
        assert old in lines[line_no - 1]
        lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    return edit


def _drop_last_value(lines: list[str]) -> None:
    lines[3] = lines[3].rsplit(maxsplit=1)[0]


def _every_line_one_short(lines: list[str]) -> None:
    lines[2:] = [line.rsplit(maxsplit=1)[0] for line in lines[2:]]


def _drop_partition_of_a2(lines: list[str]) -> None:
    lines[:] = ["2", lines[1]] + [line for line in lines[2:] if not line.startswith(A2)]


@pytest.mark.parametrize(
    ("relative", "edit", "pattern"),
    [
        (IMG, _drop_last_value, r"list_attr_img\.txt:4: 10 values after the image name, expected 11"),
        (IMG, _replace(5, " 1 ", " 1 -1 "), r"list_attr_img\.txt:5: 12 values after the image name"),
        (IMG, _every_line_one_short, r"list_attr_img\.txt:3: 10 values after the image name, expected 11"),
        (IMG, _replace(4, " -1 ", " 2 "), r"list_attr_img\.txt:4: value 2 for attribute 1 \('a-line'\)"),
        (IMG, _replace(4, " -1 ", " x "), r"list_attr_img\.txt:4: value 'x' is not one of"),
        (IMG, _replace(1, "3", "three"), r"list_attr_img\.txt:1: expected the number of entries, got 'three'"),
        (IMG, _replace(1, "3", "4"), r"list_attr_img\.txt:1: the count line says 4 but the file lists 3"),
        (IMG, _replace(2, "attribute_labels", "labels"), r"list_attr_img\.txt:2: expected the header"),
        (IMG, _replace(5, B1, A2), r"list_attr_img\.txt:5: image .* second time"),
        (CLOTH, _replace(4, "1", "6"), r"list_attr_cloth\.txt:4: attribute type '6' of 'floral print'"),
        (CLOTH, _replace(1, "11", "12"), r"list_attr_cloth\.txt:1: the count line says 12 but the file lists 11"),
        (CLOTH, _replace(13, "1", ""), r"list_attr_cloth\.txt:13: attribute type 'print' of 'animal'"),
        (PARTITION, _replace(4, "val", "validation"),
         r"list_eval_partition\.txt:4: unknown evaluation status 'validation'"),
        (PARTITION, _drop_partition_of_a2,
         r"list_eval_partition\.txt: 1 images of Anno/list_attr_img\.txt have no evaluation status, first: "
         + re.escape(A2) + r" \(.*list_attr_img\.txt:4\)"),
        (PARTITION, _replace(5, B1, A1), r"list_eval_partition\.txt:5: image .* already listed on line 3"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path: Path, relative: str, edit, pattern: str) -> None:
    files = _files()
    edit(files[relative])
    root = _write(tmp_path, files)
    with pytest.raises(DataFormatError, match=pattern):
        read_deepfashion(root)


def test_type_without_usable_rows(tmp_path: Path) -> None:
    # A1 gets a second style positive and B1 loses its only one: no image is usable for style.
    images = dict(IMAGES)
    images[A1] = ({**IMAGES[A1][0], "street style": 1}, "train")
    images[B1] = ({**IMAGES[B1][0], "street style": -1}, "test")
    root = _write(tmp_path, _files(images))
    with pytest.raises(DataFormatError, match=r"list_attr_img\.txt: no image has exactly one positive attribute of "
                                              r"type 5 \(style\): 2 have none, 1 several; its 2 attributes start "
                                              r"at .*list_attr_cloth\.txt:7"):
        read_deepfashion(root)


def test_missing_image(fixture_root: Path) -> None:
    (fixture_root / A2).unlink()
    with pytest.raises(FileNotFoundError, match=r"list_attr_img\.txt: 1 listed images are missing .* first: "
                                                + re.escape(A2) + r" \(line 4\)"):
        read_deepfashion(fixture_root)
    table, _, _ = read_deepfashion(fixture_root, check_images=False)
    assert len(table) == len(EXPECTED_ROWS)


def test_missing_file(fixture_root: Path) -> None:
    (fixture_root / PARTITION).unlink()
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition\.txt"):
        read_deepfashion(fixture_root)


def test_large_label_file_parses(tmp_path: Path) -> None:
    """3,000 images x 1000 attributes, 200 per type, in the real file's shape."""
    n_images, per_type = 3000, 200
    rng = np.random.default_rng(0)
    types = np.repeat(np.arange(5), per_type)[rng.permutation(5 * per_type)]
    labels = np.where(rng.random((n_images, types.size)) < 0.01, 0, -1)
    chosen = np.stack([rng.choice(np.flatnonzero(types == t), n_images) for t in range(5)], axis=1)
    labels[np.arange(n_images)[:, None], chosen] = 1
    several = np.arange(0, n_images, 10)  # a second texture positive
    texture_columns = np.flatnonzero(types == 0)
    labels[several, np.where(chosen[several, 0] == texture_columns[0], texture_columns[1], texture_columns[0])] = 1
    none = np.arange(0, n_images, 7)  # no fabric positive
    labels[none, chosen[none, 1]] = -1
    paths = [f"img/Generated_Item_{i // 20:04d}/img_{i % 20 + 1:08d}.jpg" for i in range(n_images)]
    tokens = np.asarray(["-1", "0", "1"])[labels + 1]
    files = {
        CLOTH: ["1000", "attribute_name  attribute_type"] + [f"attribute {i:04d}{' ' * 20}{t + 1}"
                                                             for i, t in enumerate(types)],
        IMG: [str(n_images), "image_name  attribute_labels"]
        + [f"{p}   " + " ".join(row) for p, row in zip(paths, tokens.tolist(), strict=True)],
        PARTITION: [str(n_images), "image_name  evaluation_status"] + [f"{p}   train" for p in paths],
    }
    root = _write(tmp_path, files, images=False)
    table, attributes, stats = read_deepfashion(root, check_images=False)
    assert [len(a.values) for a in attributes] == [per_type] * 5
    assert stats["several_positives"]["texture"] == several.size
    assert stats["no_positive"]["fabric"] == none.size
    assert stats["rows"] == {"texture": n_images - several.size, "fabric": n_images - none.size,
                             "shape": n_images, "part": n_images, "style": n_images}
    shape_rows = table[table["attribute"] == "shape"]
    expected = np.searchsorted(np.flatnonzero(types == 2), chosen[:, 2])
    assert (shape_rows["value"].to_numpy() == expected).all()
    assert shape_rows["path"].tolist() == paths


def test_read_splits_by_the_official_partition_or_at_random(fixture_root: Path) -> None:
    official = read(DataConfig(dataset="deepfashion", root=str(fixture_root), split=SplitConfig(method="official")))
    assert official.task == "retrieval" and official.attributes == list(DEEPFASHION_TYPES)
    table, _, stats = read_deepfashion(fixture_root)
    expected = table["partition"].map({"train": "train", "val": "valid", "test": "test"})
    assert official.table["split"].tolist() == expected.tolist()
    assert official.meta["dataset"] == "deepfashion" and official.meta["stats"] == stats
    assert [a["name"] for a in official.meta["attributes"]] == list(DEEPFASHION_TYPES)
    random = read(DataConfig(dataset="deepfashion", root=str(fixture_root), split=SplitConfig(seed=3)))
    assert set(random.table["split"]) <= {"train", "valid", "test"}
    with pytest.raises(ValueError, match="asen is FashionAI's published split; data.dataset is 'deepfashion'"):
        read(DataConfig(dataset="deepfashion", root=str(fixture_root), split=SplitConfig(method="asen")))
