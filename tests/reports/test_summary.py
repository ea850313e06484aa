"""The headline summary (reports/metrics/summary.json) from hand-written cells: one entry per cell
of Tables 2-10, holding the number its table ranks by, averaged over seeds."""

from __future__ import annotations

import pytest

from agman.experiments import required_cells
from agman.reports.summary import headline_metrics
from tests.reports.test_tables import ALL_VARIANTS, ZAPPOS, make_cells


def test_every_cell_has_one_entry_with_its_tables_headline_metric(tmp_path):
    summary = headline_metrics(make_cells(tmp_path / "cells"), seeds=(0,))
    assert list(summary) == [f"{slot}-{variant}" for slot, variant in required_cells()]
    assert len(summary) == 26
    for slot in ("fashionai", "deepfashion"):
        for i, variant in enumerate(ALL_VARIANTS):
            assert summary[f"{slot}-{variant}"] == {"map": pytest.approx(0.40 + 0.01 * i, abs=1e-12)}
    for variant, (_, accuracy) in ZAPPOS.items():
        assert summary[f"zappos-{variant}"] == {"accuracy": accuracy}


def test_with_several_seeds_each_entry_is_the_mean_over_seeds(tmp_path):
    # make_cells adds 2 MAP points per seed: seeds 0 and 1 average to +1 point.
    summary = headline_metrics(make_cells(tmp_path / "cells", seeds=(0, 1)), seeds=(0, 1))
    assert summary["fashionai-csn"] == {"map": pytest.approx(0.41, abs=1e-12)}
    assert summary["zappos-agman"] == {"accuracy": ZAPPOS["agman"][1]}
