"""The paper's qualitative figures (Sec. IV-B, Figures 5-8) from trained runs, plus training curves.

Every figure is drawn from a checkpoint and its slot's prepared test split; which images appear
is a seeded choice, so a figure changes only when the run, the data or the seed does.

- ``retrieval_examples`` (Figure 5): per attribute type, a test query and its top-10 test
  candidates of that attribute, framed black when their value is the query's and red when not
  (the paper's colours), with the similarity and the value under each.
- ``ranking_comparison`` (Figure 6): one query and ten candidates (some relevant, some not), ranked
  by each model; one row per model with the AP of its ranking.
- ``attention_maps`` (Figure 7): AG-MAN's ASA map (``ModelOutput.attention``, (B, 1, h, w))
  upsampled onto the image, for several test images under every attribute type.
- ``triplet_examples`` (Figure 8, Zappos50k): test triplets with the image the model predicts
  closer and the one it predicts farther, right or wrong against the CSN label.
- ``validation_curves``: the validation score per epoch of every variant of a slot.
- ``search_grid``: the result of ``agman search`` (agman.search).

Layout. Figures are built on ``matplotlib.figure.Figure`` (no pyplot state) with every tile
placed at a fixed position in inches (``TileGrid``), never ``bbox_inches="tight"``: a figure's
pixel size follows from its rows and columns alone, and captions have reserved room rather than
being squeezed until they overlap. The cached images are small (32-64 px under the demo
profile) and are drawn with nearest-neighbour upscaling, so what is shown is what the model saw.
"""

from __future__ import annotations

import logging
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from agman.data.prepared import PreparedData
from agman.data.zappos import CONDITIONS
from agman.metrics import average_precisions

if TYPE_CHECKING:
    from agman.search import SearchResult, TrainedModel

log = logging.getLogger(__name__)

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


def _pretty(name: str) -> str:
    """``neckline_design`` -> ``neckline design``: names spelled out, as the figures print them."""
    return str(name).replace("_", " ")


def _wrap(text: str, width: int = 17) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def _short(name: str, width: int = 17) -> str:
    """A file name cut in the middle to fit one caption line (hashed names run to 36 characters)."""
    return name if len(name) <= width else f"{name[:width - 10]}…{name[-9:]}"


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


def _blank(ax) -> None:
    ax.set_axis_off()


def _title(fig: Figure, size: tuple[float, float], title: str, subtitle: str = "") -> None:
    """A bold title and, under it, a subtitle wrapped to the figure's width (two lines fit in
    ``TileGrid.top`` above a legend)."""
    w, h = size
    fig.text(0.5, 1 - 0.1 / h, title, ha="center", va="top", fontsize=TITLE_SIZE, fontweight="bold")
    if subtitle:
        chars = max(40, int(w * 72 / (CAPTION_SIZE * 0.62)))  # about 0.6 em per character
        fig.text(0.5, 1 - 0.32 / h, "\n".join(textwrap.wrap(subtitle, chars)), ha="center", va="top",
                 fontsize=CAPTION_SIZE, color="0.25")


def _legend(fig: Figure, grid: TileGrid, match: str, mismatch: str) -> None:
    """The frame colours, spelled out, under the title."""
    _, h = grid.size
    handles = [Patch(facecolor="white", edgecolor=MATCH, linewidth=2.5, label=f"black frame: {match}"),
               Patch(facecolor="white", edgecolor=MISMATCH, linewidth=2.5, label=f"red frame: {mismatch}")]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.6 / h), ncol=2, frameon=False,
               fontsize=LABEL_SIZE)


def _frame_legend(fig: Figure, grid: TileGrid) -> None:
    _legend(fig, grid, "same value as the query", "a different value from the query")


def _row_label(fig: Figure, grid: TileGrid, row: float, text: str, col: int = 0) -> None:
    """Bold text right-aligned just left of tile (row, col)."""
    x, y, _, hgt = grid.rect(row, col)
    fig.text(x - 0.1 / grid.size[0], y + hgt / 2, text, ha="right", va="center", fontsize=LABEL_SIZE,
             fontweight="bold", linespacing=1.2)


def _column_header(fig: Figure, grid: TileGrid, col: int, text: str) -> None:
    x, y, wid, hgt = grid.rect(0, col)
    fig.text(x + wid / 2, y + hgt + 0.06 / grid.size[1], text, ha="center", va="bottom", fontsize=LABEL_SIZE,
             fontweight="bold")


def _image(data: PreparedData, entry: int) -> np.ndarray:
    return data.cache[int(entry)].permute(1, 2, 0).numpy()  # (S, S, 3) uint8


def value_names(data: PreparedData) -> dict[str, list[str]]:
    """Attribute -> its value names (attributes.json of the prepared data)."""
    return {a["name"]: list(a["values"]) for a in data.meta.get("attributes", [])}


def _value(names: dict[str, list[str]], attribute: str, value: int) -> str:
    values = names.get(attribute, [])
    return _pretty(values[value]) if 0 <= value < len(values) else f"value {value}"


def _source(data: PreparedData) -> str:
    dataset = data.meta.get("dataset", "")
    return f"{dataset}, demo stand-in" if dataset.startswith("demo_") else dataset


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _test_rows(data: PreparedData) -> pd.DataFrame:
    if data.task != "retrieval":
        raise ValueError(f"{data.meta.get('dataset', 'this dataset')}: retrieval figures need a retrieval dataset "
                         f"(task {data.task!r})")
    rows = data.table[data.table["split"] == "test"]
    if rows.empty:
        raise ValueError("the prepared data has no test rows")
    return rows


# ------------------------------------------------------------------------------------ Figure 5


def retrieval_examples(trained: TrainedModel, data: PreparedData, subtitle: str, out: str | Path, seed: int = 0,
                       queries_per_attribute: int = 1, top: int = 10) -> Path:
    """Figure 5: top-``top`` test candidates of seeded test queries, one or more per attribute type."""
    rows = _test_rows(data)
    names = value_names(data)
    rng = np.random.default_rng(seed)
    examples = []  # (attribute, query row, ranked candidate rows, similarities)
    for a, attribute in enumerate(data.attributes):
        queries = rows[(rows["role"] == "query") & (rows["attribute_index"] == a)]
        candidates = rows[(rows["role"] == "candidate") & (rows["attribute_index"] == a)]
        if queries.empty or candidates.empty:
            continue
        picked = np.sort(rng.choice(len(queries), min(queries_per_attribute, len(queries)), replace=False))
        cand_emb = trained.embed([_image(data, e) for e in candidates["entry"]], a)  # (N, c')
        query_emb = trained.embed([_image(data, e) for e in queries["entry"].iloc[picked]], a)  # (k, c')
        for q, emb in zip(picked, query_emb):
            similarity = cand_emb @ emb  # (N,)
            order = np.argsort(-similarity, kind="stable")[:top]
            examples.append((attribute, queries.iloc[q], candidates.iloc[order], similarity[order]))
    if not examples:
        raise ValueError("no attribute type has both test queries and test candidates")
    shown = max(len(e[2]) for e in examples)
    grid = retrieval_grid(len(examples), shown)
    fig = grid.figure()
    _title(fig, grid.size, f"Top-{top} retrieval examples (cf. the paper's Figure 5)", subtitle)
    _frame_legend(fig, grid)
    _column_header(fig, grid, 0, "query")
    for k in range(shown):
        _column_header(fig, grid, 1 + k, f"rank {k + 1}")
    for r, (attribute, query, ranked, similarity) in enumerate(examples):
        query_value = _value(names, attribute, int(query["value"]))
        _row_label(fig, grid, r, _wrap(_pretty(attribute), 14))
        draw_tile(grid.axes(fig, r, 0), _image(data, query["entry"]), caption=f"query: {_wrap(query_value)}",
                  bold=True)
        for k, ((_, cand), sim) in enumerate(zip(ranked.iterrows(), similarity)):
            same = int(cand["value"]) == int(query["value"])
            caption = f"{_wrap(_value(names, attribute, int(cand['value'])))}\nsim {sim:.3f}"
            draw_tile(grid.axes(fig, r, 1 + k), _image(data, cand["entry"]), MATCH if same else MISMATCH, caption,
                      MATCH if same else MISMATCH)
        for k in range(len(ranked), shown):
            _blank(grid.axes(fig, r, 1 + k))
    return _save(fig, out)


# ------------------------------------------------------------------------------------ Figure 6


def _pick_ranking_task(data: PreparedData, rng: np.random.Generator, n_candidates: int):
    """A seeded (attribute, query row, candidate rows) with relevant and irrelevant candidates mixed."""
    rows = _test_rows(data)
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
    cand_pixels = [_image(data, e) for e in candidates["entry"]]
    values = candidates["value"].to_numpy()
    rankings = []  # (label, order, similarities, AP)
    for label, trained in models.items():
        cand_emb = trained.embed(cand_pixels, a)  # (N, c')
        query_emb = trained.embed([_image(data, query["entry"])], a)  # (1, c')
        similarity = cand_emb @ query_emb[0]  # (N,)
        ap = float(average_precisions(query_emb, np.array([query["value"]]), cand_emb, values)[0])
        rankings.append((label, np.argsort(-similarity, kind="stable"), similarity, ap))
    grid = ranking_grid(len(rankings), len(candidates))
    fig = grid.figure()
    query_value = _value(names, attribute, int(query["value"]))
    _title(fig, grid.size, f"The same {len(candidates)} candidates ranked by each model (cf. the paper's Figure 6)",
           subtitle)
    _frame_legend(fig, grid)
    _column_header(fig, grid, 0, "query")
    for k in range(len(candidates)):
        _column_header(fig, grid, 1 + k, f"rank {k + 1}")
    # One query for every row, drawn once beside the middle of the rankings.
    draw_tile(grid.axes(fig, (len(rankings) - 1) / 2, 0), _image(data, query["entry"]),
              caption=f"{_wrap(_pretty(attribute))}:\n{_wrap(query_value)}", bold=True)
    for r, (label, order, similarity, ap) in enumerate(rankings):
        _row_label(fig, grid, r, f"{_wrap(label, 16)}\nAP {ap:.3f}", col=1)
        for k, i in enumerate(order):
            same = int(values[i]) == int(query["value"])
            caption = f"{_wrap(_value(names, attribute, int(values[i])))}\nsim {similarity[i]:.3f}"
            draw_tile(grid.axes(fig, r, 1 + k), cand_pixels[i], MATCH if same else MISMATCH, caption,
                      MATCH if same else MISMATCH)
    return _save(fig, out)


# ------------------------------------------------------------------------------------ Figure 7


def _pick_images(data: PreparedData, rng: np.random.Generator, n_images: int) -> pd.DataFrame:
    """Seeded test images, spread over the attribute types they are annotated with."""
    rows = _test_rows(data)
    first = rows.drop_duplicates("entry")
    by_attribute = [first[first["attribute_index"] == a] for a in range(len(data.attributes))]
    picked = []
    for k in range(n_images):  # round-robin over the annotated attribute so FashionAI shows each type
        pool = [g for g in by_attribute if not g.empty]
        if not pool:
            break
        group = pool[k % len(pool)]
        i = rng.integers(len(group))
        picked.append(group.iloc[i])
        by_attribute = [g[g["entry"] != group.iloc[i]["entry"]] for g in by_attribute]
    return pd.DataFrame(picked)


def attention_maps(trained: TrainedModel, data: PreparedData, subtitle: str, out: str | Path, seed: int = 0,
                   n_images: int = 4) -> Path:
    """Figure 7: the ASA attention map of each test image under every attribute type, on the image.

    The map is shown as weight x h*w, so 1 is the uniform map's weight and the colour scale is
    shared by the whole figure (comparable between images and attributes).
    """
    names = value_names(data)
    images = _pick_images(data, np.random.default_rng(seed), n_images)
    rows = _test_rows(data)
    pixels = [_image(data, e) for e in images["entry"]]
    batch = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)  # (B, 3, S, S) uint8
    size = batch.shape[-1]
    maps = []
    for a in range(len(data.attributes)):
        attention = trained.run(batch, a).attention.cpu()  # (B, 1, h, w), sums to 1 over h*w
        h, w = attention.shape[-2:]
        up = F.interpolate(attention * (h * w), size=(size, size), mode="bilinear", align_corners=False)
        maps.append(up[:, 0].numpy())  # (B, S, S)
    vmax = max(1.5, max(float(m.max()) for m in maps))
    grid = attention_grid(len(images), len(data.attributes))
    fig = grid.figure()
    aga = trained.config["model"].get("aga", {})
    note = "" if aga.get("asa", True) else " (ASA is off in this run: the map is uniform)"
    _title(fig, grid.size, "ASA attention under each query attribute (cf. the paper's Figure 7)",
           f"{subtitle}. The {h}x{w} map is upsampled bilinearly onto the image.{note}")
    _column_header(fig, grid, 0, "image")
    for a, attribute in enumerate(data.attributes):
        _column_header(fig, grid, 1 + a, _pretty(attribute))
    image_rows = rows.set_index(["entry", "attribute"])["value"]
    mappable = None
    for r, (pix, entry) in enumerate(zip(pixels, images["entry"])):
        draw_tile(grid.axes(fig, r, 0), pix, caption=f"test image {r + 1}")
        for a, attribute in enumerate(data.attributes):
            key = (entry, attribute)
            caption = _wrap(_value(names, attribute, int(image_rows[key]))) if key in image_rows.index \
                else "(not annotated)"
            ax = grid.axes(fig, r, 1 + a)
            draw_tile(ax, pix, caption=caption)
            mappable = ax.imshow(maps[a][r], cmap="jet", alpha=0.5, vmin=0.0, vmax=vmax, interpolation="bilinear")
    x, y, _, _ = grid.rect(len(images) - 1, len(data.attributes))
    w, h_in = grid.size
    _, top_y, _, tile_h = grid.rect(0, 0)
    cax = fig.add_axes([x + (grid.tile + 0.25) / w, y, 0.15 / w, top_y + tile_h - y])
    bar = fig.colorbar(mappable, cax=cax)
    bar.set_label("attention weight x h·w (1 = uniform)", fontsize=CAPTION_SIZE)
    bar.ax.tick_params(labelsize=CAPTION_SIZE)
    return _save(fig, out)


# ------------------------------------------------------------------------------------ Figure 8


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
    _title(fig, grid.size, "Triplet relation prediction (cf. the paper's Figure 8)", subtitle)
    _legend(fig, grid, "prediction right (the labelled close image is predicted closer)", "prediction wrong")
    for k in range(per_condition):
        for j, header in enumerate(("anchor", "predicted close", "predicted far")):
            _column_header(fig, grid, 3 * k + j, header)
    slots = {c: 0 for c in range(len(data.attributes))}
    for c, rows in picked:
        condition = data.attributes[c]
        spec = next((z for z in CONDITIONS if z.name == condition), None)
        column = spec.table_column if spec else None
        pixels = [_image(data, entries[r]) for r in rows]
        emb = trained.embed(pixels, c)  # (3, c') anchor, close, far
        sim_close, sim_far = float(emb[1] @ emb[0]), float(emb[2] @ emb[0])
        right = sim_close > sim_far
        order = (1, 2) if right else (2, 1)  # (predicted close, predicted far) positions in the triplet
        sims = {1: sim_close, 2: sim_far}
        frame = MATCH if right else MISMATCH

        def value(r: int) -> str:
            return _wrap(_pretty(data.table.iloc[r][column])) if column in data.table else ""

        if slots[c] == 0:
            _row_label(fig, grid, c, _wrap(spec.title if spec else condition, 12))
        col = 3 * slots[c]
        slots[c] += 1
        draw_tile(grid.axes(fig, c, col), pixels[0], caption=f"{value(rows[0])}\n{'right' if right else 'wrong'}",
                  caption_color=frame, bold=True)
        for j, pos in enumerate(order):
            label = "labelled close" if pos == 1 else "labelled far"
            draw_tile(grid.axes(fig, c, col + 1 + j), pixels[pos], frame,
                      f"{value(rows[pos])}\nsim {sims[pos]:.3f}\n{label}", frame)
    return _save(fig, out)


# ------------------------------------------------------------------------------------- curves


def validation_curves(curves: dict[str, Path], score: str, title: str, out: str | Path, subtitle: str = "") -> Path:
    """The validation ``score`` (``map`` or ``accuracy``) per epoch, one line per variant label."""
    if not curves:
        raise ValueError(f"{title}: no training curves to plot")
    size = CURVES_SIZE
    fig = Figure(figsize=size, dpi=DPI)
    ax = fig.add_axes([0.08, 0.11, 0.6, 0.75])
    column = f"val_{score}"
    colours = [f"C{i}" for i in range(10)]
    styles = ("-", "--", "-.", ":")
    for i, (label, path) in enumerate(curves.items()):
        table = pd.read_csv(path)
        if column not in table or "epoch" not in table:
            raise KeyError(f"{path}: no 'epoch' and {column!r} columns")
        ax.plot(table["epoch"], table[column], color=colours[i % 10], linestyle=styles[(i // 10) % 4],
                marker="o", markersize=4, label=label)
    ax.set_xlabel("epoch", fontsize=LABEL_SIZE)
    ax.set_ylabel(f"validation {'MAP' if score == 'map' else score}", fontsize=LABEL_SIZE)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    _title(fig, size, title, subtitle)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=CAPTION_SIZE, frameon=False)
    return _save(fig, out)


# -------------------------------------------------------------------------------------- search


def search_grid(result: SearchResult, trained: TrainedModel, out: str | Path) -> Path:
    """The query and its matches, with rank, similarity, file name and (when known) value."""
    grid = search_grid_layout(len(result.matches))
    per_row, rows = grid.cols - 1, grid.rows
    fig = grid.figure()
    _title(fig, grid.size, f"Top {len(result.matches)} matches under {_pretty(result.attribute)}",
           f"model {trained.name} ({trained.checkpoint}); gallery {result.gallery}")
    _column_header(fig, grid, 0, "query")
    draw_tile(grid.axes(fig, 0, 0), result.query, caption=_short(result.query_path.name), bold=True)
    for r in range(1, rows):
        _blank(grid.axes(fig, r, 0))
    for i, match in enumerate(result.matches):
        value = f"\n{_wrap(_pretty(match.item.value))}" if match.item.value is not None else ""
        caption = f"#{match.rank}  sim {match.similarity:.3f}\n{_short(Path(match.item.name).name)}{value}"
        draw_tile(grid.axes(fig, i // per_row, 1 + i % per_row), match.pixels, None, caption)
    return _save(fig, out)


# ------------------------------------------------------------------------------------ per slot


@dataclass(frozen=True)
class SlotRuns:
    """What the figures of one table slot read."""

    slot: str  # fashionai, deepfashion or zappos (a key of agman.reports.tables.DATASETS)
    data: PreparedData  # the slot's prepared data with its image cache
    checkpoints: dict[str, Path]  # variant -> best.pt of the figures' seed; must hold "agman"
    curves: dict[str, Path]  # variant -> per-epoch CSV of the same seed (reports/curves)


def slot_figures(runs: SlotRuns, out_dir: str | Path, seed: int = 0, device: str = "auto") -> list[tuple[Path, float]]:
    """Every figure of one slot: Figures 5-7 (retrieval) or 8 (triplets), then the curves.

    Returns (PNG, seconds it took) pairs. Figure 6 ranks with every variant in ``checkpoints``,
    AG-MAN first; the others follow in the order given.
    """
    from agman.evaluation import SCORE
    from agman.reports.tables import DATASETS, VARIANT_LABELS
    from agman.search import load_trained

    out_dir = Path(out_dir)
    slot, data = runs.slot, runs.data
    if "agman" not in runs.checkpoints:
        raise KeyError(f"slot {slot}: the figures need AG-MAN's checkpoint (variant 'agman')")
    dataset = DATASETS[slot].title if slot in DATASETS else slot
    agman = load_trained(runs.checkpoints["agman"], device)
    data_line = f"{dataset} ({_source(data)}), test split, seed {seed}"
    subtitle = f"{VARIANT_LABELS['agman']} on {data_line}; checkpoint {runs.checkpoints['agman']}"
    written = []

    def timed(make, name: str, *args, **kwargs) -> None:
        start = time.perf_counter()
        path = make(*args, out=out_dir / name, **kwargs)
        written.append((path, time.perf_counter() - start))
        log.info("%s written in %.1f s", path, written[-1][1])

    if data.task == "retrieval":
        timed(retrieval_examples, f"fig5_retrieval_{slot}.png", agman, data, subtitle, seed=seed)
        models = {VARIANT_LABELS["agman"]: agman}
        for variant, checkpoint in runs.checkpoints.items():
            if variant != "agman":
                models[VARIANT_LABELS.get(variant, variant)] = load_trained(checkpoint, device)
        timed(ranking_comparison, f"fig6_ranking_{slot}.png", models, data,
              f"{data_line}; each model's run of the same seed; AP of each ranking of the 10", seed=seed)
        timed(attention_maps, f"fig7_attention_{slot}.png", agman, data, subtitle, seed=seed)
    else:
        timed(triplet_examples, f"fig8_triplets_{slot}.png", agman, data, subtitle, seed=seed)
    if runs.curves:
        score = SCORE[data.task]
        labels = {VARIANT_LABELS.get(v, v): path for v, path in runs.curves.items()}
        timed(validation_curves, f"curves_{slot}.png", labels, score,
              f"Validation {'MAP' if score == 'map' else 'accuracy'} per epoch, {dataset}",
              subtitle=f"{_source(data)}; one line per variant, the run of seed {seed}")
    return written
