"""Every cell's headline number in one small file (``reports/metrics/summary.json``, DVC metrics),
so that ``dvc exp show`` can compare experiments on it instead of on the hundreds of columns of
the per-cell metrics files: per cell, the mean over seeds of the test number its table ranks the
methods by (MAP on FashionAI and DeepFashion, triplet accuracy on Zappos50k), as a fraction."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from agman.experiments import SLOTS, required_cells
from agman.reports.cell_report import collect


def headline_metrics(cells_root: str | Path, seeds: Sequence[int]) -> dict[str, dict[str, float]]:
    """``{"<slot>-<variant>": {"map": 0.4987}, ..., "zappos-agman": {"accuracy": 0.5975}}``."""
    cells = collect(cells_root, seeds)
    summary = {}
    for slot, variant in required_cells():
        metric = SLOTS[slot].task.headline
        summary[f"{slot}-{variant}"] = {metric: statistics.fmean(cells[slot, variant, seed].metrics[metric]
                                                                for seed in seeds)}
    return summary
