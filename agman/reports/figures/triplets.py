"""Figure 8 (Zappos50k): test triplets with the image the model predicts closer and the one it
predicts farther, right or wrong against the CSN label."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agman.data.prepared import PreparedData
from agman.data.zappos import CONDITIONS
from agman.inference import TrainedModel
from agman.reports.figures.layout import (
    MATCH,
    MISMATCH,
    add_column_header,
    add_legend,
    add_row_label,
    add_title,
    draw_tile,
    pretty,
    save_png,
    triplet_grid,
    wrap,
)
from agman.reports.figures.prepared import cached_image


def triplet_examples(trained: TrainedModel, data: PreparedData, subtitle: str, out: str | Path, seed: int = 0,
                     per_condition: int = 2) -> Path:
    """Figure 8: seeded test triplets per condition; the model's closer and farther image.

    A prediction is right when the image it puts closer to the anchor is the CSN list's close
    one (similarity strictly greater, as in the evaluation).
    """
    if "test" not in data.triplets:
        raise ValueError("the prepared data has no test triplets (triplets_test.npy)")
    triplets = data.triplets["test"]  # (T, 4) rows: anchor, close, far, condition
    rng = np.random.default_rng(seed)
    entries = data.entries
    picked = []  # (condition, [anchor, close, far] table rows)
    for c in range(len(data.attributes)):
        mine = triplets[triplets[:, 3] == c]
        for i in np.sort(rng.choice(len(mine), min(per_condition, len(mine)), replace=False)):
            picked.append((c, mine[i, :3]))
    if not picked:
        raise ValueError("the test triplets are empty")
    grid = triplet_grid(len(data.attributes), per_condition)
    fig = grid.figure()
    add_title(fig, grid.size, "Triplet relation prediction (cf. the paper's Figure 8)", subtitle)
    add_legend(fig, grid, "prediction right (the labelled close image is predicted closer)", "prediction wrong")
    for k in range(per_condition):
        for j, header in enumerate(("anchor", "predicted close", "predicted far")):
            add_column_header(fig, grid, 3 * k + j, header)
    placed = {c: 0 for c in range(len(data.attributes))}  # triplets drawn so far in each condition's row
    for c, rows in picked:
        condition = data.attributes[c]
        spec = next((z for z in CONDITIONS if z.name == condition), None)
        column = spec.table_column if spec else None
        pixels = [cached_image(data, entries[r]) for r in rows]
        emb = trained.embed(pixels, c)  # (3, c') anchor, close, far
        sim_close, sim_far = float(emb[1] @ emb[0]), float(emb[2] @ emb[0])
        right = sim_close > sim_far
        order = (1, 2) if right else (2, 1)  # (predicted close, predicted far) positions in the triplet
        sims = {1: sim_close, 2: sim_far}
        frame = MATCH if right else MISMATCH

        def value(r: int, column: str = column) -> str:
            return wrap(pretty(data.table.iloc[r][column])) if column in data.table else ""

        if placed[c] == 0:
            add_row_label(fig, grid, c, wrap(spec.title if spec else condition, 12))
        col = 3 * placed[c]
        placed[c] += 1
        draw_tile(grid.axes(fig, c, col), pixels[0], caption=f"{value(rows[0])}\n{'right' if right else 'wrong'}",
                  caption_color=frame, bold=True)
        for j, pos in enumerate(order):
            label = "labelled close" if pos == 1 else "labelled far"
            draw_tile(grid.axes(fig, c, col + 1 + j), pixels[pos], frame,
                      f"{value(rows[pos])}\nsim {sims[pos]:.3f}\n{label}", frame)
    return save_png(fig, out)
