"""Figure 5: per attribute type, a test query and its top-10 test candidates of that attribute,
framed black when their value is the query's and red when not (the paper's colours), with the
similarity and the value under each."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agman.data.prepared import PreparedData
from agman.inference import TrainedModel
from agman.reports.figures.layout import (
    MATCH,
    MISMATCH,
    add_column_header,
    add_frame_legend,
    add_row_label,
    add_title,
    blank,
    draw_tile,
    pretty,
    retrieval_grid,
    save_png,
    wrap,
)
from agman.reports.figures.prepared import cached_image, retrieval_test_rows, value_name, value_names


def retrieval_examples(trained: TrainedModel, data: PreparedData, subtitle: str, out: str | Path, *, seed: int = 0,
                       queries_per_attribute: int = 1, top: int = 10) -> Path:
    """Figure 5: top-``top`` test candidates of seeded test queries, one or more per attribute type."""
    rows = retrieval_test_rows(data)
    names = value_names(data)
    rng = np.random.default_rng(seed)
    examples = []  # (attribute, query row, ranked candidate rows, similarities)
    for a, attribute in enumerate(data.attributes):
        queries = rows[(rows["role"] == "query") & (rows["attribute_index"] == a)]
        candidates = rows[(rows["role"] == "candidate") & (rows["attribute_index"] == a)]
        if queries.empty or candidates.empty:
            continue
        picked = np.sort(rng.choice(len(queries), min(queries_per_attribute, len(queries)), replace=False))
        cand_emb = trained.embed([cached_image(data, e) for e in candidates["entry"]], a)  # (N, c')
        query_emb = trained.embed([cached_image(data, e) for e in queries["entry"].iloc[picked]], a)  # (k, c')
        for q, emb in zip(picked, query_emb, strict=True):
            similarity = cand_emb @ emb  # (N,)
            order = np.argsort(-similarity, kind="stable")[:top]
            examples.append((attribute, queries.iloc[q], candidates.iloc[order], similarity[order]))
    if not examples:
        raise ValueError("no attribute type has both test queries and test candidates")
    shown = max(len(e[2]) for e in examples)
    grid = retrieval_grid(len(examples), shown)
    fig = grid.figure()
    add_title(fig, grid.size, f"Top-{top} retrieval examples (cf. the paper's Figure 5)", subtitle)
    add_frame_legend(fig, grid)
    add_column_header(fig, grid, 0, "query")
    for k in range(shown):
        add_column_header(fig, grid, 1 + k, f"rank {k + 1}")
    for r, (attribute, query, ranked, similarity) in enumerate(examples):
        query_value = value_name(names, attribute, int(query["value"]))
        add_row_label(fig, grid, r, wrap(pretty(attribute), 14))
        draw_tile(grid.axes(fig, r, 0), cached_image(data, query["entry"]), caption=f"query: {wrap(query_value)}",
                  bold=True)
        for k, ((_, cand), sim) in enumerate(zip(ranked.iterrows(), similarity, strict=True)):
            same = int(cand["value"]) == int(query["value"])
            caption = f"{wrap(value_name(names, attribute, int(cand['value'])))}\nsim {sim:.3f}"
            draw_tile(grid.axes(fig, r, 1 + k), cached_image(data, cand["entry"]), MATCH if same else MISMATCH, caption,
                      MATCH if same else MISMATCH)
        for k in range(len(ranked), shown):
            blank(grid.axes(fig, r, 1 + k))
    return save_png(fig, out)
