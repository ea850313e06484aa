"""Tests for the synthetic FashionAI-format dataset writer (agman.data.demo)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agman.data import demo
from agman.data.demo import DEMO_FASHIONAI_ATTRIBUTES, render_garment, write_demo_fashionai

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
    runs = sum(1 for a, b in zip(tasks, tasks[1:]) if a != b) + 1
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


def test_render_garment_returns_rgb_of_requested_size() -> None:
    image = render_garment(_values(), 96, np.random.default_rng(0))
    assert image.mode == "RGB"
    assert image.size == (96, 96)


@pytest.mark.parametrize("attribute", [name for name, _ in DEMO_FASHIONAI_ATTRIBUTES])
def test_each_value_changes_pixels(attribute: str) -> None:
    renders = [
        np.asarray(render_garment(_values(**{attribute: v}), 64, np.random.default_rng(123)))
        for v in range(len(VALUE_COUNTS[attribute]))
    ]
    for i in range(len(renders)):
        for j in range(i + 1, len(renders)):
            assert not np.array_equal(renders[i], renders[j]), (attribute, i, j)


def test_render_garment_rejects_incomplete_values() -> None:
    values = _values()
    del values["texture"]
    with pytest.raises(ValueError):
        render_garment(values, 32, np.random.default_rng(0))


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
    assert set(demo.ANNOTATION_SHOT) == {name for name, _ in demo.DEMO_FASHIONAI_ATTRIBUTES}
    assert set(demo.ANNOTATION_SHOT.values()) <= set(demo.SHOTS)
    values = _values()
    images = {shot: np.asarray(demo.render_garment(values, 64, np.random.default_rng(5), shot)) for shot in demo.SHOTS}
    assert all(img.shape == (64, 64, 3) for img in images.values())
    assert not np.array_equal(images["full"], images["close"])


def test_catalogue_shots_are_centred_at_one_scale_on_white() -> None:
    # The Zappos stand-in's framing: what varies between two catalogue images is the garment, not
    # where the figure stands or how large it is.
    values = _values()
    rows = []
    for seed in (1, 2, 3):
        img = np.asarray(demo.render_garment(values, 64, np.random.default_rng(seed), "catalogue")).astype(int)
        background = np.all(img == demo._CATALOGUE_BACKGROUND, axis=2)  # (64, 64)
        assert background[0].all() and background[-1].all()  # plain, untouched border rows
        figure_rows = np.flatnonzero(~background.all(axis=1))
        rows.append((figure_rows[0], figure_rows[-1]))
        columns = np.flatnonzero(~background.all(axis=0))
        assert abs((columns[0] + columns[-1]) / 2 - 31.5) <= 1.0  # centred
    assert len(set(rows)) == 1
