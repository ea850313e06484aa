"""Tests for the synthetic FashionAI-format dataset writer (agman.data.demo.fashionai)."""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agman.data.demo import fashionai as demo
from agman.data.demo.fashionai import ANNOTATION_SHOT, DEMO_FASHIONAI_ATTRIBUTES, write_demo_fashionai
from agman.data.demo.garment import SHOTS, render_garment

N_PER_ATTR = 10
SIZE = 64
VALUE_COUNTS = dict(DEMO_FASHIONAI_ATTRIBUTES)

def _rows(root: Path) -> list[list[str]]:
    with open(root / "Annotations" / "label.csv", newline="") as f:
        return list(csv.reader(f))


def _leftover_tmp_dirs(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "fashionai"
    write_demo_fashionai(root, images_per_attribute=N_PER_ATTR, size=SIZE, seed=7)
    return root


def test_same_seed_is_byte_identical(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_demo_fashionai(again, images_per_attribute=N_PER_ATTR, size=SIZE, seed=7)
    label_csv = Path("Annotations") / "label.csv"
    assert (dataset / label_csv).read_bytes() == (again / label_csv).read_bytes()
    for relative, _, _ in _rows(dataset)[:5]:
        assert (dataset / relative).read_bytes() == (again / relative).read_bytes()


def test_different_seed_differs(dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_demo_fashionai(other, images_per_attribute=N_PER_ATTR, size=SIZE, seed=8)
    assert (dataset / "Annotations" / "label.csv").read_bytes() != (other / "Annotations" / "label.csv").read_bytes()
    first_a = sorted((dataset / "Images").rglob("*.jpg"))[0].read_bytes()
    first_b = sorted((other / "Images").rglob("*.jpg"))[0].read_bytes()
    assert first_a != first_b


def test_label_csv_format(dataset: Path) -> None:
    rows = _rows(dataset)
    assert len(rows) == N_PER_ATTR * len(DEMO_FASHIONAI_ATTRIBUTES)
    for row in rows:
        assert len(row) == 3
        relative, task, label = row
        path = dataset / relative
        assert path.is_file()
        assert relative.startswith("Images/") and path.suffix == ".jpg"
        assert len(path.stem) == 32 and all(c in "0123456789abcdef" for c in path.stem)
        assert path.parent.name == task
        attribute = task.removesuffix("_labels")
        assert task == f"{attribute}_labels" and attribute in VALUE_COUNTS
        assert len(label) == len(VALUE_COUNTS[attribute])
        assert label.count("y") == 1
        assert set(label) <= set("ynm")
    image_files = list((dataset / "Images").rglob("*.jpg"))
    assert len(image_files) == len(rows)


def test_counts_and_balance(dataset: Path) -> None:
    rows = _rows(dataset)
    per_attribute = Counter(task for _, task, _ in rows)
    assert per_attribute == {f"{name}_labels": N_PER_ATTR for name, _ in DEMO_FASHIONAI_ATTRIBUTES}
    for name, value_names in DEMO_FASHIONAI_ATTRIBUTES:
        annotated = Counter(label.index("y") for _, task, label in rows if task == f"{name}_labels")
        counts = [annotated.get(v, 0) for v in range(len(value_names))]
        assert max(counts) - min(counts) <= 1


def test_rows_interleave_attributes(dataset: Path) -> None:
    tasks = [task for _, task, _ in _rows(dataset)]
    runs = sum(1 for a, b in itertools.pairwise(tasks) if a != b) + 1
    assert runs > len(DEMO_FASHIONAI_ATTRIBUTES)


def test_maybe_labels_appear_at_about_five_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the labels matter here, so skip the pixel work to keep the test fast.
    monkeypatch.setattr(demo, "render_garment", lambda values, size, rng, shot="full": Image.new("RGB", (size, size)))
    root = tmp_path / "labels_only"
    write_demo_fashionai(root, images_per_attribute=500, size=8, seed=3)
    rows = _rows(root)
    maybe = sum("m" in label for _, _, label in rows)
    assert 0.02 * len(rows) < maybe < 0.08 * len(rows)
    assert all(label.count("m") <= 1 for _, _, label in rows)


def _values(**overrides: int) -> dict[str, int]:
    values = {name: 0 for name, _ in DEMO_FASHIONAI_ATTRIBUTES}
    values.update(overrides)
    return values


def _fail_after(monkeypatch: pytest.MonkeyPatch, n_calls: int) -> None:
    real = demo.render_garment
    calls = {"n": 0}

    def flaky(values: dict[str, int], size: int, rng: np.random.Generator, shot: str = "full"):
        calls["n"] += 1
        if calls["n"] > n_calls:
            raise RuntimeError("simulated crash")
        return real(values, size, rng, shot)

    monkeypatch.setattr(demo, "render_garment", flaky)


def test_crash_leaves_no_partial_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "fresh"
    _fail_after(monkeypatch, 5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_demo_fashionai(out, images_per_attribute=4, size=32, seed=1)
    assert not out.exists()
    assert _leftover_tmp_dirs(tmp_path) == []


def test_crash_keeps_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "existing"
    write_demo_fashionai(out, images_per_attribute=2, size=32, seed=1)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _fail_after(monkeypatch, 3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_demo_fashionai(out, images_per_attribute=4, size=32, seed=2)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert _leftover_tmp_dirs(tmp_path) == []


def test_rewrite_replaces_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "replaced"
    write_demo_fashionai(out, images_per_attribute=4, size=32, seed=1)
    write_demo_fashionai(out, images_per_attribute=2, size=32, seed=2)
    assert len(_rows(out)) == 2 * len(DEMO_FASHIONAI_ATTRIBUTES)
    assert len(list((out / "Images").rglob("*.jpg"))) == 2 * len(DEMO_FASHIONAI_ATTRIBUTES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replaced"]


def test_framing_follows_the_annotated_attribute(tmp_path: Path) -> None:
    # As in FashionAI, the shot (close-up, upper body, full length) depends on the annotated
    # attribute type, so the classification branch has something to learn.
    assert set(ANNOTATION_SHOT) == {name for name, _ in DEMO_FASHIONAI_ATTRIBUTES}
    assert set(ANNOTATION_SHOT.values()) <= set(SHOTS)
    values = _values()
    images = {shot: np.asarray(render_garment(values, 64, np.random.default_rng(5), shot)) for shot in SHOTS}
    assert all(img.shape == (64, 64, 3) for img in images.values())
    assert not np.array_equal(images["full"], images["close"])


def test_demo_dataset_goes_through_the_fashionai_parser(demo_table):
    table, names = demo_table
    assert len(table) == 24 * len(names)
    assert table.groupby("attribute").size().tolist() == [24] * len(names)


def test_stand_in_attributes_are_what_the_renderer_draws():
    assert [(a.name, a.values) for a in demo.ATTRIBUTES] == list(DEMO_FASHIONAI_ATTRIBUTES)
