"""The ``tables`` stage at the real test sizes: Tables 2-10 with their bootstrap notes for 26 cells.

The committed demo cell reports (``reports/cells/``) are scaled up: each cell's per-item rows are
resampled (seeded, with replacement, the same rows for every cell of a slot so that they pair)
to the real test sizes, ``--queries`` APs per retrieval cell (FashionAI's 3,600 by default;
DeepFashion gets the same) and ``--triplets`` per Zappos50k cell (4 x 40,000), in a temporary
folder; the headline numbers stay the demo's. Then ``agman.reports.tables.write_tables`` runs on
them with the stage's 10,000 bootstrap resamples,
timed end to end (reading the reports included), median of ``--repeats``.

    python benchmarks/tables_scale.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import common
import numpy as np
import pandas as pd

from agman.reports.tables import write_tables


def scaled_reports(source: Path, target: Path, queries: int, triplets: int, seed: int) -> int:
    picks: dict[str, np.ndarray] = {}  # per slot: the same rows for every cell, so that they still pair
    cells = 0
    for per_item in sorted(source.glob("*/*/seed*/per_item.csv")):
        slot = per_item.relative_to(source).parts[0]
        folder = target / per_item.parent.relative_to(source)
        shutil.copytree(per_item.parent, folder)
        rows = pd.read_csv(per_item)
        size = triplets if "correct" in rows.columns else queries
        if slot not in picks:
            picks[slot] = np.random.default_rng([seed, len(picks)]).integers(0, len(rows), size)
        rows.iloc[picks[slot]].to_csv(folder / "per_item.csv", index=False)
        cells += 1
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=Path, default=common.ROOT / "reports" / "cells")
    parser.add_argument("--queries", type=int, default=3600)
    parser.add_argument("--triplets", type=int, default=160_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cells_root = Path(tmp) / "cells"
        n_cells = scaled_reports(args.cells, cells_root, args.queries, args.triplets, seed=0)
        out = Path(tmp) / "tables"
        seconds, all_runs = common.median_seconds(lambda: write_tables(cells_root, out), args.repeats)
        with common.PeakRSS() as rss:
            write_tables(cells_root, out)
    print(json.dumps({"benchmark": "tables_scale", "machine": common.machine(), "cells": n_cells,
                      "queries_per_retrieval_cell": args.queries, "triplets_per_zappos_cell": args.triplets,
                      "seconds": seconds, "seconds_all_repeats": all_runs,
                      "peak_rss_increase_mb": round(rss.increase_mb, 1)}, indent=1))


if __name__ == "__main__":
    main()
