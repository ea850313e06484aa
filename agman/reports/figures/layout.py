"""Where every tile, caption and label of a figure goes, and the drawing helpers the figures share.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot state) with every tile placed at a
fixed position in inches (``TileGrid``), never ``bbox_inches="tight"``: a figure's pixel size
follows from its rows and columns alone, and captions have reserved room rather than being
squeezed until they overlap. The cached images are small (32-64 px under the demo profile) and
are drawn with nearest-neighbour upscaling, so what is shown is what the model saw.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

DPI = 100
#: The paper's frame colours (Figures 5 and 6): black = same value as the query, red = different.
MATCH, MISMATCH = "black", "red"
FRAME_WIDTH = 3.5  # points
CAPTION_SIZE = 8  # points
LABEL_SIZE = 9
TITLE_SIZE = 11


@dataclass(frozen=True)
class TileGrid:
    """Rows x columns of square image tiles, each with room for a caption under it (inches).

    ``breaks`` are column indices before which a wider gap separates groups (the query from
    its results, one triplet from the next). ``header`` is room above the first row for column
    titles; ``top`` is room above that for the figure title and legend.
    """

    rows: int
    cols: int
    tile: float = 1.15
    caption: float = 0.45
    gap: float = 0.1
    breaks: tuple[int, ...] = ()
    break_gap: float = 0.35
    left: float = 0.2
    right: float = 0.2
    header: float = 0.0
    top: float = 0.95
    bottom: float = 0.1

    def _x(self, col: int) -> float:
        return self.left + col * (self.tile + self.gap) + sum(self.break_gap for b in self.breaks if b <= col)

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) in inches."""
        width = self._x(self.cols - 1) + self.tile + self.right
        height = self.top + self.header + self.rows * (self.tile + self.caption) + (self.rows - 1) * self.gap \
            + self.bottom
        return width, height

    @property
    def pixels(self) -> tuple[int, int]:
        """(width, height) of the saved PNG at ``DPI``."""
        w, h = self.size
        return round(w * DPI), round(h * DPI)

    def figure(self) -> Figure:
        return Figure(figsize=self.size, dpi=DPI)

    def rect(self, row: float, col: int) -> list[float]:
        """[x, y, w, h] of a tile in figure fractions; a fractional ``row`` sits between rows."""
        w, h = self.size
        top = self.top + self.header + row * (self.tile + self.caption + self.gap)
        return [self._x(col) / w, 1 - (top + self.tile) / h, self.tile / w, self.tile / h]

    def axes(self, fig: Figure, row: float, col: int):
        return fig.add_axes(self.rect(row, col))


# Each figure's layout from its row and column counts alone, so a PNG's size says what it holds.


def retrieval_grid(queries: int, top: int) -> TileGrid:
    """Figure 5: a row per query (attribute label at the left), the query then its ``top`` matches."""
    return TileGrid(queries, 1 + top, breaks=(1,), left=1.45, header=0.3)


def ranking_grid(models: int, candidates: int) -> TileGrid:
    """Figure 6: the query once at the left, the model labels (with AP) between it and the rankings."""
    return TileGrid(models, 1 + candidates, breaks=(1,), break_gap=1.5, header=0.3)


def attention_grid(images: int, attributes: int) -> TileGrid:
    """Figure 7: a row per image, the image then its map under each attribute; a colour bar at the right."""
    return TileGrid(images, 1 + attributes, breaks=(1,), header=0.3, right=1.0, left=0.3, top=0.8)


def triplet_grid(conditions: int, per_condition: int) -> TileGrid:
    """Figure 8: a row per condition, ``per_condition`` (anchor, predicted close, predicted far) blocks."""
    return TileGrid(conditions, 3 * per_condition, breaks=tuple(range(3, 3 * per_condition, 3)), left=1.2,
                    header=0.3, caption=0.6)


#: The validation curves figure, in inches.
CURVES_SIZE = (9.0, 5.0)


def search_grid_layout(matches: int, per_row: int = 10) -> TileGrid:
    """``agman search``: the query, then the matches ``per_row`` to a row."""
    return TileGrid(max(1, -(-matches // per_row)), 1 + min(per_row, max(matches, 1)), breaks=(1,), header=0.3,
                    caption=0.6)


def pretty(name: str) -> str:
    """``neckline_design`` -> ``neckline design``: names spelled out, as the figures print them."""
    return str(name).replace("_", " ")


def wrap(text: str, width: int = 17) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def draw_tile(ax, pixels: np.ndarray, frame: str | None = None, caption: str = "", caption_color: str = "black",
              bold: bool = False) -> None:
    """One image with an optional coloured frame and a caption under it."""
    ax.imshow(pixels, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_edgecolor(frame)
            spine.set_linewidth(FRAME_WIDTH)
    if caption:
        ax.text(0.5, -0.05, caption, transform=ax.transAxes, ha="center", va="top", fontsize=CAPTION_SIZE,
                color=caption_color, fontweight="bold" if bold else "normal", linespacing=1.15)


def blank(ax) -> None:
    ax.set_axis_off()


def add_title(fig: Figure, size: tuple[float, float], title: str, subtitle: str = "") -> None:
    """A bold title and, under it, a subtitle wrapped to the figure's width (two lines fit in
    ``TileGrid.top`` above a legend)."""
    w, h = size
    fig.text(0.5, 1 - 0.1 / h, title, ha="center", va="top", fontsize=TITLE_SIZE, fontweight="bold")
    if subtitle:
        chars = max(40, int(w * 72 / (CAPTION_SIZE * 0.62)))  # about 0.6 em per character
        fig.text(0.5, 1 - 0.32 / h, "\n".join(textwrap.wrap(subtitle, chars)), ha="center", va="top",
                 fontsize=CAPTION_SIZE, color="0.25")


def add_legend(fig: Figure, grid: TileGrid, match: str, mismatch: str) -> None:
    """The frame colours, spelled out, under the title."""
    _, h = grid.size
    handles = [Patch(facecolor="white", edgecolor=MATCH, linewidth=2.5, label=f"black frame: {match}"),
               Patch(facecolor="white", edgecolor=MISMATCH, linewidth=2.5, label=f"red frame: {mismatch}")]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.6 / h), ncol=2, frameon=False,
               fontsize=LABEL_SIZE)


def add_frame_legend(fig: Figure, grid: TileGrid) -> None:
    add_legend(fig, grid, "same value as the query", "a different value from the query")


def add_row_label(fig: Figure, grid: TileGrid, row: float, text: str, col: int = 0) -> None:
    """Bold text right-aligned just left of tile (row, col)."""
    x, y, _, hgt = grid.rect(row, col)
    fig.text(x - 0.1 / grid.size[0], y + hgt / 2, text, ha="right", va="center", fontsize=LABEL_SIZE,
             fontweight="bold", linespacing=1.2)


def add_column_header(fig: Figure, grid: TileGrid, col: int, text: str) -> None:
    x, y, wid, hgt = grid.rect(0, col)
    fig.text(x + wid / 2, y + hgt + 0.06 / grid.size[1], text, ha="center", va="bottom", fontsize=LABEL_SIZE,
             fontweight="bold")


def save_png(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path

