"""The paper's Tables 2-10 rebuilt from the evaluated cells, each number set beside the paper's.

A cell is one evaluated (dataset, variant, seed) run in ``<cells_root>/<dataset>/<variant>/seed<k>/``
(``cell.json``, ``metrics.json``, ``per_item.csv``), produced by the DVC stage
``cell@<dataset>-<variant>`` (which trains and evaluates every seed of the cell). ``write_tables`` reads every cell Tables 2-10 need and
writes ``table{2..10}.{md,csv,tex}`` plus a ``README.md`` holding all tables in reading order.

Numbers. MAP and accuracy are percentages with 2 decimals, the loss has 4; with several seeds a
number is the mean ± sample standard deviation (ddof=1) over seeds. The best value of each column
is bold and the second best underlined, as in the paper, in the column's direction (the loss is
better lower); marks compare the numbers as printed, so values that print the same tie, and every
tied row gets the mark (dense ranking: after a tie for best, the next distinct value is second).

Layout. The Markdown keeps the paper's shape (one row per method, one column per metric) and puts
the paper's number and the difference in small print under ours in the same cell
(``62.88<br><sub>paper 62.88, Δ +0.00</sub>``): separate sub-columns would triple FashionAI's nine
metric columns to 27, too wide to read on GitHub, and a second row per method would separate the
comparison from the bold/underline ranking it sits beside. The CSV is for machines, so every part
gets its own column (``<col>``, ``<col>_std``, ``<col>_paper``, ``<col>_delta``); the LaTeX is a
booktabs table with the paper's number and the difference in parentheses, in script size.

Significance (under Tables 2-4). AG-MAN is compared with the best baseline of its dataset (by MAP,
or accuracy on Zappos50k) on the paired per-item rows (AP per query, correct per triplet), so the
mean difference is exactly the difference of the headline numbers. See ``paired_bootstrap``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from agman.io import write_folder_atomically

#: The paper's printed numbers, table -> variant -> column (see the file's header).
PAPER_TABLES_PATH = Path(__file__).with_name("paper_tables.yaml")

#: The compared methods of Tables 2-4, in the paper's row order.
BASELINES = ("csn", "asenet_v2", "attnfashion")

#: Row labels. The ablation variants are named by what they keep; their check-mark columns say the same.
VARIANT_LABELS = {
    "csn": "CSN",
    "asenet_v2": "ASENet_V2",
    "attnfashion": "AttnFashion",
    "agman": "AG-MAN (ours)",
    "aga_only": "AGA only",
    "aga_hier": "AGA + hierarchical feature",
    "aga_cls": "AGA + classification loss",
    "no_asa": "AGA without ASA",
    "no_sa": "AGA without SA",
    "no_aca": "AGA without ACA",
    "no_ca": "AGA without CA",
}


@dataclass(frozen=True)
class Task:
    """What a dataset's cells report, and how their per-item rows are compared."""

    headline: str  # metrics.json key of the number a method is ranked by
    unit: str  # what a difference of the headline (in percentage points) is called
    items: str  # what one per_item.csv row is
    pair_key: str  # per_item.csv column that must agree row by row between paired cells
    score: str  # per_item.csv column whose mean is the headline, as a fraction


RETRIEVAL = Task(headline="map", unit="MAP points", items="queries", pair_key="attribute", score="ap")
TRIPLET = Task(headline="accuracy", unit="accuracy points", items="triplets", pair_key="condition", score="correct")


@dataclass(frozen=True)
class Dataset:
    title: str  # as the paper names it
    task: Task


#: The table slots. A slot's cells may run on a demo stand-in; cell.json ``source`` says which.
DATASETS = {
    "fashionai": Dataset("FashionAI", RETRIEVAL),
    "deepfashion": Dataset("DeepFashion", RETRIEVAL),
    "zappos": Dataset("Zappos50k", TRIPLET),
}


@dataclass(frozen=True)
class TableSpec:
    """One of the paper's tables: which cells fill it and how it is laid out."""

    number: int
    title: str  # the paper's caption, shortened
    dataset: str  # table slot, a key of DATASETS
    rows: tuple[str, ...]  # variants, in the paper's row order
    marks: tuple[str, ...] = ()  # check-mark column headers
    ticks: Mapping[str, str] = field(default_factory=dict)  # variant -> one "✓" or "-" per mark, space-separated
    significance: bool = False  # AG-MAN against the best baseline, under the table


_PARTS = ("AGA", "Hierarchical feature", "Classification loss")
_PART_TICKS = {"aga_only": "✓ - -", "aga_hier": "✓ ✓ -", "aga_cls": "✓ - ✓", "agman": "✓ ✓ ✓"}
_AGA_PARTS = ("ASA", "SA", "ACA", "CA")
_AGA_TICKS = {"no_asa": "- ✓ ✓ ✓", "no_sa": "✓ - ✓ ✓", "no_aca": "✓ ✓ - ✓", "no_ca": "✓ ✓ ✓ -",
              "agman": "✓ ✓ ✓ ✓"}

TABLES: tuple[TableSpec, ...] = (
    TableSpec(2, "Results on the FashionAI dataset", "fashionai", BASELINES + ("agman",), significance=True),
    TableSpec(3, "Results on the DeepFashion dataset", "deepfashion", BASELINES + ("agman",), significance=True),
    TableSpec(4, "Triplet relation prediction on Zappos50k", "zappos", BASELINES + ("agman",), significance=True),
    TableSpec(5, "Ablation studies on the FashionAI dataset", "fashionai",
              ("aga_only", "aga_hier", "aga_cls", "agman"), _PARTS, _PART_TICKS),
    TableSpec(6, "Ablation studies on the DeepFashion dataset", "deepfashion",
              ("aga_only", "aga_hier", "aga_cls", "agman"), _PARTS, _PART_TICKS),
    TableSpec(7, "Ablation studies on the AGA module (FashionAI)", "fashionai",
              ("no_asa", "no_sa", "no_aca", "no_ca", "agman"), _AGA_PARTS, _AGA_TICKS),
    TableSpec(8, "Ablation studies on the AGA module (DeepFashion)", "deepfashion",
              ("no_asa", "no_sa", "no_aca", "no_ca", "agman"), _AGA_PARTS, _AGA_TICKS),
    TableSpec(9, "AGA against existing attribute-aware attention modules (FashionAI)", "fashionai",
              ("asenet_v2", "attnfashion", "aga_only")),
    TableSpec(10, "AGA against other attribute-aware attention modules (DeepFashion)", "deepfashion",
              ("asenet_v2", "attnfashion", "aga_only")),
)


class CellFormatError(ValueError):
    """A cell's files exist but lack something the tables need, or cells that must agree do not."""


# --------------------------------------------------------------------------------------- cells

CELL_FILES = ("cell.json", "metrics.json", "per_item.csv")


def cell_name(dataset: str, variant: str, seed: int) -> str:
    return f"{dataset}/{variant}/seed{seed}"


def stage_name(dataset: str, variant: str, seed: int) -> str:
    """The DVC stage that trains and evaluates a cell, all its seeds (a foreach stage of dvc.yaml)."""
    return f"cell@{dataset}-{variant}"


def tables_of(dataset: str, variant: str) -> tuple[int, ...]:
    """The tables a (dataset, variant) cell appears in, e.g. (2, 5, 7) for FashionAI's AG-MAN."""
    return tuple(spec.number for spec in TABLES if spec.dataset == dataset and variant in spec.rows)


def cell_folder(cells_root: str | Path, dataset: str, variant: str, seed: int) -> Path:
    return Path(cells_root) / dataset / variant / f"seed{seed}"


@dataclass(frozen=True)
class Cell:
    """One evaluated (dataset, variant, seed), as read from its folder."""

    dataset: str
    variant: str
    seed: int
    source: str  # the data actually used: the slot's name, or a demo stand-in's
    attributes: tuple[str, ...]  # attribute names in the dataset's index order (empty for Zappos50k)
    metrics: Mapping[str, Any]
    per_item: pd.DataFrame

    @property
    def name(self) -> str:
        return cell_name(self.dataset, self.variant, self.seed)


CellKey = tuple[str, str, int]  # (dataset, variant, seed)


def required_cells(tables: Iterable[TableSpec] = TABLES) -> list[tuple[str, str]]:
    """(dataset, variant) pairs the tables read, in first-use order."""
    return list(dict.fromkeys((spec.dataset, variant) for spec in tables for variant in spec.rows))


def collect(cells_root: str | Path, seeds: Sequence[int], tables: Iterable[TableSpec] = TABLES) -> dict[CellKey, Cell]:
    """Read every cell the tables need, for every seed.

    Raises FileNotFoundError listing every absent cell or cell file with the DVC stage that
    makes it (so one run says everything left to do), and CellFormatError when a present cell
    lacks a value the tables print or the cells of one dataset disagree on data or attributes.
    """
    if not seeds:
        raise ValueError("seeds: at least one seed is needed")
    keys = [(dataset, variant, seed) for dataset, variant in required_cells(tables) for seed in seeds]
    missing = []
    for key in keys:
        folder = cell_folder(cells_root, *key)
        absent = "folder" if not folder.is_dir() else ", ".join(f for f in CELL_FILES if not (folder / f).is_file())
        if absent:
            missing.append(f"{cell_name(*key)} (no {absent} in {folder}): dvc repro {stage_name(*key)}")
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of the {len(keys)} evaluated cells that Tables 2-10 need are missing or incomplete "
            f"under {cells_root}; produce them with:\n  " + "\n  ".join(missing))
    cells = {key: _read_cell(cell_folder(cells_root, *key), *key) for key in keys}
    _check_datasets_agree(cells.values())
    return cells


def _read_cell(folder: Path, dataset: str, variant: str, seed: int) -> Cell:
    name = cell_name(dataset, variant, seed)
    info = json.loads((folder / "cell.json").read_text(encoding="utf-8"))
    for key in ("dataset", "variant", "seed", "source", "attributes"):
        if key not in info:
            raise CellFormatError(f"{name}: {folder / 'cell.json'} has no {key!r}")
    for key, expected in (("dataset", dataset), ("variant", variant), ("seed", seed)):
        if info[key] != expected:
            raise CellFormatError(f"{name}: {folder / 'cell.json'} says {key} = {info[key]!r}, but its folder is "
                                  f"the cell of {key} {expected!r}")
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    task = DATASETS[dataset].task
    needed = ("map", "map_per_attribute", "map_chance") if task is RETRIEVAL else ("accuracy", "loss")
    for key in needed:
        if key not in metrics:
            raise CellFormatError(f"{name}: {folder / 'metrics.json'} has no {key!r}")
    if task is RETRIEVAL:
        for attribute in info["attributes"]:
            if attribute not in metrics["map_per_attribute"]:
                raise CellFormatError(f"{name}: {folder / 'metrics.json'} map_per_attribute has no value for "
                                      f"attribute {attribute!r} (listed in cell.json)")
    per_item = pd.read_csv(folder / "per_item.csv")
    for column in (task.pair_key, task.score) + (("chance_ap",) if task is RETRIEVAL else ()):
        if column not in per_item.columns:
            raise CellFormatError(f"{name}: {folder / 'per_item.csv'} has no column {column!r}")
    return Cell(dataset, variant, seed, info["source"], tuple(info["attributes"]), metrics, per_item)


def _check_datasets_agree(cells: Iterable[Cell]) -> None:
    """A table mixing demo and real data, or differently ordered attributes, would be meaningless."""
    first: dict[str, Cell] = {}
    for cell in cells:
        ref = first.setdefault(cell.dataset, cell)
        for what in ("source", "attributes"):
            if getattr(cell, what) != getattr(ref, what):
                raise CellFormatError(f"{cell.name} has {what} {getattr(cell, what)!r} but {ref.name} has "
                                      f"{getattr(ref, what)!r}: one table cannot mix them")


# --------------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    key: str  # metrics.json / paper_tables.yaml name
    label: str
    decimals: int
    lower_is_better: bool = False
    arrow: bool = False  # the paper marks the direction of its summary columns only

    @property
    def header(self) -> str:
        if not self.arrow:
            return self.label
        return f"{self.label} {'↓' if self.lower_is_better else '↑'}"


def columns_for(dataset: str, attributes: Sequence[str]) -> tuple[Column, ...]:
    """Metric columns: per-attribute MAP in the dataset's order, then overall MAP; Table 4's two."""
    if DATASETS[dataset].task is TRIPLET:
        return (Column("loss", "Average loss", 4, lower_is_better=True, arrow=True),
                Column("accuracy", "Prediction accuracy (%)", 2, arrow=True))
    # "skirt_length" -> "Skirt-length", the paper's spelling.
    per_attribute = tuple(Column(a, a.replace("_", "-").capitalize(), 2) for a in attributes)
    return per_attribute + (Column("map", "MAP", 2, arrow=True),)


def metric_value(cell: Cell, key: str) -> float:
    """A column's number for one cell: percentages for MAP and accuracy, the loss as it is."""
    if key == "loss":
        return float(cell.metrics["loss"])
    if key in ("map", "map_chance", "accuracy"):
        return 100.0 * float(cell.metrics[key])
    return 100.0 * float(cell.metrics["map_per_attribute"][key])


def rank_marks(values: Sequence[float], lower_is_better: bool = False) -> list[str]:
    """"best" / "second" / "" for each value (dense ranking, so ties share a mark)."""
    distinct = sorted(set(values), reverse=not lower_is_better)
    return ["best" if v == distinct[0] else "second" if len(distinct) > 1 and v == distinct[1] else "" for v in values]


@dataclass(frozen=True)
class Entry:
    """One printed number: ours over the seeds, the paper's, and the rank mark."""

    mean: float
    std: float | None  # None with a single seed
    paper: float | None  # None where the paper has no such column
    mark: str  # "best", "second" or ""

    def delta(self, decimals: int) -> float | None:
        # `+ 0.0` turns a rounded -0.0 into 0.0, so no "-0.00" is printed.
        return None if self.paper is None else round(self.mean - self.paper, decimals) + 0.0


@dataclass(frozen=True)
class Row:
    variant: str
    ticks: tuple[str, ...]
    entries: tuple[Entry, ...]

    @property
    def label(self) -> str:
        return VARIANT_LABELS[self.variant]


@dataclass(frozen=True)
class Table:
    spec: TableSpec
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    description: str  # what the numbers are, plain text
    notes: tuple[str, ...]  # lines under the table, plain text


def load_paper_tables(path: str | Path = PAPER_TABLES_PATH) -> dict[int, dict[str, dict[str, float]]]:
    """The paper's numbers: table number -> variant -> column -> value as printed."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {int(key.removeprefix("table")): rows for key, rows in raw.items()}


def build_table(spec: TableSpec, cells: Mapping[CellKey, Cell], seeds: Sequence[int],
                paper: Mapping[int, Mapping[str, Mapping[str, float]]], resamples: int = 10_000,
                bootstrap_seed: int = 0) -> Table:
    """The numbers of one table and the lines under it, ready to render in any format."""
    dataset = DATASETS[spec.dataset]
    first = cells[(spec.dataset, spec.rows[0], seeds[0])]
    columns = columns_for(spec.dataset, first.attributes)
    printed = {}  # variant -> per column (mean rounded as printed, std)
    for variant in spec.rows:
        printed[variant] = []
        for column in columns:
            values = [metric_value(cells[(spec.dataset, variant, seed)], column.key) for seed in seeds]
            std = float(np.std(values, ddof=1)) if len(values) > 1 else None
            printed[variant].append((round(float(np.mean(values)), column.decimals), std))
    marks = {variant: [] for variant in spec.rows}
    for i, column in enumerate(columns):
        for variant, mark in zip(spec.rows, rank_marks([printed[v][i][0] for v in spec.rows], column.lower_is_better)):
            marks[variant].append(mark)
    paper_rows = paper.get(spec.number, {})
    rows = tuple(
        Row(variant, tuple(spec.ticks[variant].split()) if spec.marks else (),
            tuple(Entry(mean, std, paper_rows.get(variant, {}).get(column.key), mark)
                  for column, (mean, std), mark in zip(columns, printed[variant], marks[variant])))
        for variant in spec.rows)

    if dataset.task is RETRIEVAL:
        what = (f"MAP (%) for each attribute type of {dataset.title}, then the overall MAP over all test queries "
                "(query-weighted, as the paper reports it).")
    else:
        what = "Average triplet loss over the test triplets (lower is better) and prediction accuracy (%)."
    runs = (f"One run per method (seed {seeds[0]})." if len(seeds) == 1 else
            f"Mean ± sample standard deviation over seeds {_seed_list(seeds)}.")
    notes = [chance_note(cells, spec, seeds, resamples, bootstrap_seed)]
    if spec.significance:
        notes.append(significance_note(cells, spec.dataset, seeds, resamples, bootstrap_seed))
    if first.source != spec.dataset:
        notes.append(f"Demo data: these cells ran on {first.source}, a stand-in for {dataset.title}; the paper's "
                     "numbers are for the real dataset, differences are not meaningful.")
    return Table(spec, columns, rows, f"{what} {runs}", tuple(notes))


def chance_note(cells: Mapping[CellKey, Cell], spec: TableSpec, seeds: Sequence[int], resamples: int = 10_000,
                bootstrap_seed: int = 0) -> str:
    """One line: what a method that learned nothing scores on this test split, and each row's
    distance from it with a paired bootstrap over the items (per query, AP against that query's
    expected random AP; per triplet, correct against 1/2). The chance level is the same for every
    cell of a dataset: the test split depends on neither the method nor the seed."""
    task = DATASETS[spec.dataset].task
    first = cells[(spec.dataset, spec.rows[0], seeds[0])]
    if task is RETRIEVAL:
        chance = 100.0 * first.per_item["chance_ap"].to_numpy(dtype=float)
        level = (f"a random ranking scores an expected MAP of {metric_value(first, 'map_chance'):.2f} on this test "
                 "split")
    else:
        chance = np.full(len(first.per_item), 50.0)
        level = "random embeddings predict 50.00% of the triplets"
    above, not_above = [], []
    for variant in spec.rows:
        b = paired_bootstrap(_item_scores(cells, spec.dataset, variant, seeds), chance, resamples, bootstrap_seed)
        text = f"{VARIANT_LABELS[variant]} {b.difference:+.2f} [{b.low:+.2f}, {b.high:+.2f}]"
        (above if b.low > 0 else not_above).append(text)
    verdict = []
    if above:
        verdict.append(f"above chance: {', '.join(above)}")
    if not_above:
        verdict.append(f"not clearly above: {', '.join(not_above)}")
    return (f"Chance: {level}. Each row minus chance, 95% CI (paired bootstrap over {len(chance):,} {task.items}, "
            f"{resamples:,} resamples): {'; '.join(verdict)}.")


def _seed_list(seeds: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seeds)


# --------------------------------------------------------------------------------- significance


@dataclass(frozen=True)
class Bootstrap:
    difference: float  # mean of ours - theirs over the items
    low: float  # 95% percentile interval of the resampled mean difference
    high: float
    p_value: float  # two-sided
    n_items: int
    resamples: int


# Index draws per block (x 8 bytes): bounds memory at ~32 MB however many items are resampled.
_BOOTSTRAP_BLOCK = 1 << 22


def paired_bootstrap(ours: Sequence[float], theirs: Sequence[float], resamples: int = 10_000,
                     seed: int = 0) -> Bootstrap:
    """Paired bootstrap of the mean difference ``ours - theirs`` over items (same order in both).

    Pairing keeps each item's difficulty out of the comparison: items are resampled with
    replacement and both methods' scores travel together, i.e. the per-item differences are
    resampled. The 95% interval is the percentile interval of the resampled means. The two-sided
    p-value inverts that interval, ``p = 2 * min(share of means <= 0, share >= 0)``, with the
    usual +1 in numerator and denominator so that it is never 0 (at least 2 / (resamples + 1)):
    p < 0.05 exactly when the interval excludes 0. Identical scores give difference 0 and p = 1.

    A seeded numpy loop rather than ``scipy.stats.bootstrap``: scipy reports no p-value, and its
    default BCa interval is undefined when every difference is equal.
    """
    d = np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError(f"paired_bootstrap needs two equally long non-empty 1-d score lists, got shape {d.shape}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    rng = np.random.default_rng(seed)
    values, counts = np.unique(d, return_counts=True)
    if 16 * len(values) <= len(d):
        # Few distinct differences (triplet correctness gives only -1, 0, +1): drawing how often
        # each value is picked is the same resampling, and costs resamples x distinct values
        # instead of resamples x items (0.01 s instead of ~20 s for Zappos50k's 160,000 triplets).
        means = rng.multinomial(len(d), counts / len(d), size=resamples) @ values / len(d)
    else:
        means = np.empty(resamples)
        block = max(1, _BOOTSTRAP_BLOCK // len(d))
        for start in range(0, resamples, block):
            stop = min(start + block, resamples)
            means[start:stop] = d[rng.integers(0, len(d), size=(stop - start, len(d)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    tail = min(np.count_nonzero(means <= 0), np.count_nonzero(means >= 0))
    p = min(1.0, 2 * (tail + 1) / (resamples + 1))
    return Bootstrap(float(d.mean()), float(low), float(high), float(p), len(d), resamples)


def _item_scores(cells: Mapping[CellKey, Cell], dataset: str, variant: str,
                 seeds: Sequence[int]) -> np.ndarray:
    """Per-item scores in percent, averaged over seeds.

    Averaging assumes row i is the same test item in every seed: the evaluation order is fixed
    by the test split, which the training seed does not change. The pair key column guards it.
    """
    task = DATASETS[dataset].task
    ref = cells[(dataset, variant, seeds[0])]
    scores = []
    for seed in seeds:
        cell = cells[(dataset, variant, seed)]
        _check_paired(ref, cell, task)
        scores.append(100.0 * cell.per_item[task.score].to_numpy(dtype=float))
    return np.mean(scores, axis=0)


def _check_paired(a: Cell, b: Cell, task: Task) -> None:
    ka, kb = a.per_item[task.pair_key].to_numpy(), b.per_item[task.pair_key].to_numpy()
    if len(ka) != len(kb) or not np.array_equal(ka, kb):
        raise CellFormatError(f"per_item.csv of {a.name} ({len(ka)} rows) and {b.name} ({len(kb)} rows) do not list "
                              f"the same {task.items} in the same order ({task.pair_key!r} differs): they cannot be "
                              "paired")


def significance_note(cells: Mapping[CellKey, Cell], dataset: str, seeds: Sequence[int], resamples: int = 10_000,
                      bootstrap_seed: int = 0) -> str:
    """One line: AG-MAN against the dataset's best baseline by the headline number."""
    task = DATASETS[dataset].task
    headline = {v: np.mean([metric_value(cells[(dataset, v, s)], task.headline) for s in seeds]) for v in BASELINES}
    best = max(BASELINES, key=headline.__getitem__)  # the first in paper order on a tie
    _check_paired(cells[(dataset, "agman", seeds[0])], cells[(dataset, best, seeds[0])], task)
    b = paired_bootstrap(_item_scores(cells, dataset, "agman", seeds), _item_scores(cells, dataset, best, seeds),
                         resamples, bootstrap_seed)
    p = f"= {b.p_value:.4f}" if b.p_value >= 0.0001 else "< 0.0001"
    over = f"{b.n_items:,} {task.items}" + (f" averaged over seeds {_seed_list(seeds)};" if len(seeds) > 1 else ",")
    return (f"AG-MAN vs {VARIANT_LABELS[best]}: {b.difference:+.2f} {task.unit}, 95% CI [{b.low:+.2f}, "
            f"{b.high:+.2f}], p {p} (paired bootstrap over {over} {b.resamples:,} resamples)")


# ------------------------------------------------------------------------------------ rendering

_MD_LEGEND = ("Best per column in **bold**, second best <u>underlined</u>; under each number, the paper's value and "
              "Δ = ours − paper.")


def _number(mean: float, std: float | None, decimals: int, pm: str = " ± ") -> str:
    return f"{mean:.{decimals}f}" + ("" if std is None else f"{pm}{std:.{decimals}f}")


def to_markdown(table: Table) -> str:
    spec = table.spec
    header = ["Method", *spec.marks, *(c.header for c in table.columns)]
    align = [":--", *[":-:"] * len(spec.marks), *["--:"] * len(table.columns)]
    lines = [f"## Table {spec.number}. {spec.title}", "", f"{table.description} {_MD_LEGEND}", "",
             _md_row(header), _md_row(align)]
    for row in table.rows:
        cells = []
        for column, entry in zip(table.columns, row.entries):
            d = column.decimals
            ours = _number(entry.mean, entry.std, d)
            ours = {"best": f"**{ours}**", "second": f"<u>{ours}</u>"}.get(entry.mark, ours)
            delta = entry.delta(d)
            paper = "paper –" if delta is None else f"paper {entry.paper:.{d}f}, Δ {delta:+.{d}f}"
            cells.append(f"{ours}<br><sub>{paper}</sub>")
        lines.append(_md_row([row.label, *row.ticks, *cells]))
    for note in table.notes:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def to_csv(table: Table) -> str:
    """One row per method; per metric column ``<col>``, ``<col>_std`` (empty with one seed),
    ``<col>_paper`` (empty where the paper has none) and ``<col>_delta``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["variant", "method", *table.spec.marks,
                     *(f"{c.key}{suffix}" for c in table.columns for suffix in ("", "_std", "_paper", "_delta"))])
    for row in table.rows:
        values = []
        for column, entry in zip(table.columns, row.entries):
            delta = entry.delta(column.decimals)
            values += [f"{entry.mean:.{column.decimals}f}",
                       "" if entry.std is None else f"{entry.std:.{column.decimals}f}",
                       "" if entry.paper is None else repr(float(entry.paper)),
                       "" if delta is None else f"{delta:.{column.decimals}f}"]
        writer.writerow([row.variant, row.label, *("true" if t == "✓" else "false" for t in row.ticks), *values])
    return out.getvalue()


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   # pdflatex has no glyphs for these without extra packages.
                   "±": r"$\pm$", "✓": r"\checkmark", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "–": "--",
                   "−": "$-$", "Δ": r"$\Delta$"}


def _latex(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A booktabs table (needs \\usepackage{booktabs}; amssymb for the check marks)."""
    spec = table.spec
    header = ["Method", *spec.marks, *(c.header for c in table.columns)]
    caption = (f"{spec.title} (reproduced). {table.description} Best per column in bold, second best underlined; "
               "in parentheses, the paper's value and ours − paper.")
    lines = [f"% Table {spec.number} of the AG-MAN reproduction, written by agman.reports.tables; needs booktabs "
             "and amssymb.",
             r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{_latex(caption)}}}",
             rf"\label{{tab:repro-{spec.number}}}",
             rf"\begin{{tabular}}{{l{'c' * len(spec.marks)}{'r' * len(table.columns)}}}", r"\toprule",
             " & ".join(_latex(h) for h in header) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = []
        for column, entry in zip(table.columns, row.entries):
            ours = _number(entry.mean, entry.std, column.decimals, pm=r" $\pm$ ")
            ours = {"best": rf"\textbf{{{ours}}}", "second": rf"\underline{{{ours}}}"}.get(entry.mark, ours)
            delta = entry.delta(column.decimals)
            paper = "--" if delta is None else f"{entry.paper:.{column.decimals}f}, ${delta:+.{column.decimals}f}$"
            cells.append(rf"{ours} {{\scriptsize ({paper})}}")
        lines.append(" & ".join([_latex(row.label), *(_latex(t) for t in row.ticks), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\smallskip{{\footnotesize {_latex(note)}}}" for note in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def readme(tables: Sequence[Table], cells_root: str | Path, seeds: Sequence[int]) -> str:
    """All tables in reading order, with how they were produced."""
    head = ["# AG-MAN reproduction: Tables 2-10", "",
            "Produced by `dvc repro tables` (agman.reports.tables.write_tables) from the evaluated cells under "
            f"`{cells_root}`, seeds {_seed_list(seeds)}; do not edit by hand. Each table is also in "
            "`table<N>.md`, `table<N>.csv` and `table<N>.tex`. The paper's numbers come from "
            "`agman/reports/paper_tables.yaml`, transcribed from Xiao & Yamasaki, IEEE Access 2024.", ""]
    return "\n".join(head) + "\n" + "\n".join(to_markdown(t) for t in tables)


# -------------------------------------------------------------------------------------- writing


def render_tables(cells_root: str | Path, seeds: Sequence[int] = (0,), resamples: int = 10_000,
                  bootstrap_seed: int = 0) -> dict[str, str]:
    """File name -> content of every output file: ``table{2..10}.{md,csv,tex}`` and README.md."""
    seeds = tuple(seeds)
    cells = collect(cells_root, seeds)
    paper = load_paper_tables()
    tables = [build_table(spec, cells, seeds, paper, resamples, bootstrap_seed) for spec in TABLES]
    files = {}
    for table in tables:
        n = table.spec.number
        files |= {f"table{n}.md": to_markdown(table), f"table{n}.csv": to_csv(table), f"table{n}.tex": to_latex(table)}
    files["README.md"] = readme(tables, cells_root, seeds)
    return files


def write_tables(cells_root: str | Path, out_dir: str | Path, seeds: Sequence[int] = (0,), resamples: int = 10_000,
                 bootstrap_seed: int = 0) -> list[Path]:
    """Write every table into ``out_dir`` and return the written paths.

    ``out_dir`` belongs to this function: it is replaced as a whole (written into a temporary
    folder first, so an interrupted run leaves the previous tables intact). To keep a mistaken
    ``out_dir`` (say ``reports/``) from being wiped, a folder holding files this function does not
    write is refused.
    """
    out = Path(out_dir)
    files = render_tables(cells_root, seeds, resamples, bootstrap_seed)
    foreign = sorted(p.name for p in out.iterdir() if p.name not in files) if out.is_dir() else []
    if foreign:
        raise FileExistsError(f"{out} holds files the tables do not write ({', '.join(foreign)}); refusing to replace "
                              "it: give write_tables a folder of its own")

    def render(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")

    write_folder_atomically(out, render)
    return [out / name for name in files]
