"""The result of ``agman search`` (agman.search): the query and its matches."""

from __future__ import annotations

from pathlib import Path

from agman.inference import TrainedModel
from agman.reports.figures.layout import (
    add_column_header,
    add_title,
    blank,
    draw_tile,
    pretty,
    save_png,
    search_grid_layout,
    wrap,
)


def _short(name: str, width: int = 17) -> str:
    """A file name cut in the middle to fit one caption line (hashed names run to 36 characters)."""
    return name if len(name) <= width else f"{name[:width - 10]}…{name[-9:]}"


def search_grid(result, trained: TrainedModel, out: str | Path) -> Path:
    """The query and its matches (``result``, an ``agman.search.SearchResult``), with rank, similarity,
    file name and (when known) value."""
    grid = search_grid_layout(len(result.matches))
    per_row, rows = grid.cols - 1, grid.rows
    fig = grid.figure()
    add_title(fig, grid.size, f"Top {len(result.matches)} matches under {pretty(result.attribute)}",
              f"model {trained.name} ({trained.checkpoint}); gallery {result.gallery}")
    add_column_header(fig, grid, 0, "query")
    draw_tile(grid.axes(fig, 0, 0), result.query, caption=_short(result.query_path.name), bold=True)
    for r in range(1, rows):
        blank(grid.axes(fig, r, 0))
    for i, match in enumerate(result.matches):
        value = f"\n{wrap(pretty(match.item.value))}" if match.item.value is not None else ""
        caption = f"#{match.rank}  sim {match.similarity:.3f}\n{_short(Path(match.item.name).name)}{value}"
        draw_tile(grid.axes(fig, i // per_row, 1 + i % per_row), match.pixels, None, caption)
    return save_png(fig, out)
