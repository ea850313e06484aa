"""Figure 6: one query and ten candidates (some relevant, some not), ranked by each model; one row
per model with the AP of its ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from agman.data.prepared import PreparedData
from agman.inference import TrainedModel
from agman.metrics import average_precisions
from agman.reports.figures.layout import (
    MATCH,
    MISMATCH,
    add_column_header,
    add_frame_legend,
    add_row_label,
    add_title,
    draw_tile,
    pretty,
    ranking_grid,
    save_png,
    wrap,
)
from agman.reports.figures.prepared import cached_image, retrieval_test_rows, value_name, value_names


def _pick_ranking_task(data: PreparedData, rng: np.random.Generator, n_candidates: int):
    """A seeded (attribute, query row, candidate rows) with relevant and irrelevant candidates mixed."""
    rows = retrieval_test_rows(data)
    eligible = []
    for a in range(len(data.attributes)):
        candidates = rows[(rows["role"] == "candidate") & (rows["attribute_index"] == a)]
        for _, query in rows[(rows["role"] == "query") & (rows["attribute_index"] == a)].iterrows():
            relevant = int((candidates["value"] == query["value"]).sum())
            if relevant >= 2 and len(candidates) - relevant >= 2:
                eligible.append((a, query))
    if not eligible:
        raise ValueError("no test query has at least two relevant and two irrelevant candidates")
    a, query = eligible[rng.integers(len(eligible))]
    candidates = rows[(rows["role"] == "candidate") & (rows["attribute_index"] == a)]
    relevant = candidates[candidates["value"] == query["value"]]
    other = candidates[candidates["value"] != query["value"]]
    # About 4 relevant among 10, as in the paper's figure; both groups are capped by what exists.
    n_relevant = min(len(relevant), max(2, round(0.4 * n_candidates)), n_candidates - 2)
    n_other = min(len(other), n_candidates - n_relevant)
    picked = pd.concat([relevant.iloc[np.sort(rng.choice(len(relevant), n_relevant, replace=False))],
                        other.iloc[np.sort(rng.choice(len(other), n_other, replace=False))]])
    return a, query, picked.iloc[rng.permutation(len(picked))]


def ranking_comparison(models: dict[str, TrainedModel], data: PreparedData, subtitle: str, out: str | Path,
                       seed: int = 0, n_candidates: int = 10) -> Path:
    """Figure 6: one query and the same candidates ranked by each model (label -> model), a row each."""
    if not models:
        raise ValueError("ranking_comparison needs at least one model")
    names = value_names(data)
    a, query, candidates = _pick_ranking_task(data, np.random.default_rng(seed), n_candidates)
    attribute = data.attributes[a]
    cand_pixels = [cached_image(data, e) for e in candidates["entry"]]
    values = candidates["value"].to_numpy()
    rankings = []  # (label, order, similarities, AP)
    for label, trained in models.items():
        cand_emb = trained.embed(cand_pixels, a)  # (N, c')
        query_emb = trained.embed([cached_image(data, query["entry"])], a)  # (1, c')
        similarity = cand_emb @ query_emb[0]  # (N,)
        ap = float(average_precisions(query_emb, np.array([query["value"]]), cand_emb, values)[0])
        rankings.append((label, np.argsort(-similarity, kind="stable"), similarity, ap))
    grid = ranking_grid(len(rankings), len(candidates))
    fig = grid.figure()
    query_value = value_name(names, attribute, int(query["value"]))
    add_title(fig, grid.size, f"The same {len(candidates)} candidates ranked by each model (cf. the paper's Figure 6)",
              subtitle)
    add_frame_legend(fig, grid)
    add_column_header(fig, grid, 0, "query")
    for k in range(len(candidates)):
        add_column_header(fig, grid, 1 + k, f"rank {k + 1}")
    # One query for every row, drawn once beside the middle of the rankings.
    draw_tile(grid.axes(fig, (len(rankings) - 1) / 2, 0), cached_image(data, query["entry"]),
              caption=f"{wrap(pretty(attribute))}:\n{wrap(query_value)}", bold=True)
    for r, (label, order, similarity, ap) in enumerate(rankings):
        add_row_label(fig, grid, r, f"{wrap(label, 16)}\nAP {ap:.3f}", col=1)
        for k, i in enumerate(order):
            same = int(values[i]) == int(query["value"])
            caption = f"{wrap(value_name(names, attribute, int(values[i])))}\nsim {similarity[i]:.3f}"
            draw_tile(grid.axes(fig, r, 1 + k), cand_pixels[i], MATCH if same else MISMATCH, caption,
                      MATCH if same else MISMATCH)
    return save_png(fig, out)
