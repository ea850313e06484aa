import numpy as np
import pandas as pd
import pytest

from agman.config import SplitConfig
from agman.data.attributes import FASHIONAI, Attribute, dataset_attributes
from agman.data.fashionai import DataFormatError, read_fashionai_labels
from agman.data.split import split_items
from agman.data.triplets import sample_triplets, usable_attributes

from tests.helpers import SHARED

ATTRS = (Attribute("collar_design", ("a", "b", "c")), Attribute("skirt_length", ("x", "y")))


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


def test_demo_dataset_goes_through_the_fashionai_parser(demo_table):
    table, names = demo_table
    assert len(table) == 24 * len(names)
    assert table.groupby("attribute").size().tolist() == [24] * len(names)


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


def test_triplets_are_valid_and_deterministic(demo_table):
    table, names = demo_table
    triplets = sample_triplets(table, names, 500, seed=0, epoch=0)
    assert triplets.shape == (500, 4) and triplets.dtype == np.int64
    a, p, n, attr = triplets.T
    assert (a != p).all()
    assert (table["split"].to_numpy()[triplets[:, :3]] == "train").all()
    attrs, values = table["attribute_index"].to_numpy(), table["value"].to_numpy()
    assert (attrs[a] == attr).all() and (attrs[p] == attr).all() and (attrs[n] == attr).all()
    assert (values[a] == values[p]).all() and (values[a] != values[n]).all()
    assert set(attr) == set(range(len(names)))
    np.testing.assert_array_equal(triplets, sample_triplets(table, names, 500, seed=0, epoch=0))
    assert not np.array_equal(triplets, sample_triplets(table, names, 500, seed=0, epoch=1))


def test_triplets_skip_attributes_that_cannot_form_triplets(caplog):
    table = pd.DataFrame({
        "path": [f"{i}.jpg" for i in range(7)],
        "attribute_index": [0, 0, 0, 1, 1, 2, 2],
        "value": [0, 0, 1, 3, 3, 0, 1],
        "split": ["train"] * 7,
    })
    names = ["ok", "one_value", "singletons"]
    usable, problems = usable_attributes(table, names)
    assert usable == [0]
    assert any(p.startswith("one_value: fewer than 2 values") for p in problems)
    assert any(p.startswith("singletons: no value has 2 training images") for p in problems)
    triplets = sample_triplets(table, names, 50, seed=0, epoch=0)
    assert set(triplets[:, 3]) == {0}
    assert "one_value" in caplog.text
    with pytest.raises(ValueError, match="no attribute can form triplets"):
        sample_triplets(table[table["attribute_index"] == 1], names, 5, seed=0, epoch=0)


def test_dataset_attribute_lists():
    assert [a.name for a in FASHIONAI][:2] == ["skirt_length", "sleeve_length"]
    assert [len(a.values) for a in FASHIONAI] == [6, 9, 8, 6, 5, 5, 10, 5]
    with pytest.raises(KeyError, match="data.dataset"):
        dataset_attributes("nope")


@pytest.mark.skipif(not (SHARED / "fixtures" / "asen-fashionai").is_dir(), reason="needs ../shared fixtures")
def test_real_fashionai_label_files_parse():
    fixtures = SHARED / "fixtures" / "asen-fashionai"
    for split in ("valid", "test"):
        table = read_fashionai_labels(fixtures, FASHIONAI, check_images=False,
                                      label_file=fixtures / f"label_{split}.csv")
        assert len(table) == 18_000
    # The value index equals ASEN's: check it against query_test.txt through filenames_test.txt.
    names = (fixtures / "filenames_test.txt").read_text().split()
    by_path = dict(zip(table["path"], zip(table["attribute_index"], table["value"])))
    for line in (fixtures / "query_test.txt").read_text().splitlines()[:500]:
        row, task, value = map(int, line.split())
        assert by_path[names[row].removeprefix("test/")] == (task, value)


@pytest.mark.parametrize("train", [True, False])
def test_transform_equals_torchvision_v2_bit_for_bit(train):
    """build_transform is torchvision v2's flip + ToDtype + Normalize as plain tensor ops: same
    values, same random draws (so seeded runs are unchanged), without v2's per-call overhead."""
    import torch
    from torchvision.transforms import v2

    from agman.data.images import IMAGENET_MEAN, IMAGENET_STD, build_transform

    steps = [v2.RandomHorizontalFlip()] if train else []
    reference = v2.Compose(steps + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    ours = build_transform(train)
    images = torch.randint(0, 256, (12, 3, 9, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    images = [images[i] for i in range(len(images))] + [images[0].permute(0, 2, 1)]  # incl. a strided view
    torch.manual_seed(5)
    expected = [reference(x) for x in images]
    after_reference = torch.rand(1)
    torch.manual_seed(5)
    got = [ours(x) for x in images]
    assert torch.equal(torch.rand(1), after_reference)  # the same number of draws
    for e, g in zip(expected, got):
        assert e.dtype == g.dtype == torch.float32 and torch.equal(e, g)
    if train:  # both outcomes of the coin occurred
        assert any(torch.equal(g, ours.__class__(False)(x)) for g, x in zip(got, images))
        assert any(not torch.equal(g, ours.__class__(False)(x)) for g, x in zip(got, images))
    with pytest.raises(TypeError, match="uint8"):
        ours(torch.zeros(3, 2, 2))
