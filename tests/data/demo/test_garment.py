"""Tests for the figure renderer every stand-in draws (agman.data.demo.garment)."""

from __future__ import annotations

import numpy as np
import pytest

from agman.data.demo import garment
from agman.data.demo.garment import GARMENT_ATTRIBUTES, render_garment

VALUE_COUNTS = dict(GARMENT_ATTRIBUTES)


def _values(**overrides: int) -> dict[str, int]:
    values = {name: 0 for name, _ in GARMENT_ATTRIBUTES}
    values.update(overrides)
    return values


def test_render_garment_returns_rgb_of_requested_size() -> None:
    image = render_garment(_values(), 96, np.random.default_rng(0))
    assert image.mode == "RGB"
    assert image.size == (96, 96)


@pytest.mark.parametrize("attribute", [name for name, _ in GARMENT_ATTRIBUTES])
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


def test_catalogue_shots_are_centred_at_one_scale_on_white() -> None:
    # The Zappos stand-in's framing: what varies between two catalogue images is the garment, not
    # where the figure stands or how large it is.
    values = _values()
    rows = []
    for seed in (1, 2, 3):
        img = np.asarray(render_garment(values, 64, np.random.default_rng(seed), "catalogue")).astype(int)
        background = np.all(img == garment._CATALOGUE_BACKGROUND, axis=2)  # (64, 64)
        assert background[0].all() and background[-1].all()  # plain, untouched border rows
        figure_rows = np.flatnonzero(~background.all(axis=1))
        rows.append((figure_rows[0], figure_rows[-1]))
        columns = np.flatnonzero(~background.all(axis=0))
        assert abs((columns[0] + columns[-1]) / 2 - 31.5) <= 1.0  # centred
    assert len(set(rows)) == 1
