"""One table's numbers from the cells: columns, rank marks, the paper's numbers, and the notes under it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from agman.experiments import BASELINES, RETRIEVAL, SLOTS, TRIPLET, VARIANT_LABELS, TableSpec
from agman.reports.cell_report import Cell, CellKey
from agman.reports.tables.statistics import check_paired, item_scores, paired_bootstrap

#: The paper's printed numbers, table -> variant -> column (see the file's header).
PAPER_TABLES_PATH = Path(__file__).parents[1] / "paper_tables.yaml"


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


def columns_for(slot: str, attributes: Sequence[str]) -> tuple[Column, ...]:
    """Metric columns: per-attribute MAP in the slot's order, then overall MAP; Table 4's two."""
    if SLOTS[slot].task is TRIPLET:
        return (Column("loss", "Average loss", 4, lower_is_better=True, arrow=True),
                Column("accuracy", "Prediction accuracy (%)", 2, arrow=True))
    # "skirt_length" -> "Skirt-length", the paper's spelling; four decimals, as the paper prints MAPs.
    per_attribute = tuple(Column(a, a.replace("_", "-").capitalize(), 4) for a in attributes)
    return per_attribute + (Column("map", "MAP", 4, arrow=True),)


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


def seed_list(seeds: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seeds)


def build_table(spec: TableSpec, cells: Mapping[CellKey, Cell], seeds: Sequence[int],
                paper: Mapping[int, Mapping[str, Mapping[str, float]]], resamples: int = 10_000,
                bootstrap_seed: int = 0) -> Table:
    """The numbers of one table and the lines under it, ready to render in any format."""
    slot = SLOTS[spec.slot]
    first = cells[(spec.slot, spec.rows[0], seeds[0])]
    columns = columns_for(spec.slot, first.attributes)
    printed = {}  # variant -> per column (mean rounded as printed, std)
    for variant in spec.rows:
        printed[variant] = []
        for column in columns:
            values = [metric_value(cells[(spec.slot, variant, seed)], column.key) for seed in seeds]
            std = float(np.std(values, ddof=1)) if len(values) > 1 else None
            printed[variant].append((round(float(np.mean(values)), column.decimals), std))
    marks = {variant: [] for variant in spec.rows}
    for i, column in enumerate(columns):
        column_marks = rank_marks([printed[v][i][0] for v in spec.rows], column.lower_is_better)
        for variant, mark in zip(spec.rows, column_marks, strict=True):
            marks[variant].append(mark)
    paper_rows = paper.get(spec.number, {})
    rows = tuple(
        Row(variant, tuple(spec.ticks[variant].split()) if spec.marks else (),
            tuple(Entry(mean, std, paper_rows.get(variant, {}).get(column.key), mark)
                  for column, (mean, std), mark in zip(columns, printed[variant], marks[variant], strict=True)))
        for variant in spec.rows)

    if slot.task is RETRIEVAL:
        what = (f"MAP (%) for each attribute type of {slot.title}, then the overall MAP over all test queries "
                "(query-weighted, as the paper reports it).")
    else:
        what = "Average triplet loss over the test triplets (lower is better) and prediction accuracy (%)."
    runs = (f"One run per method (seed {seeds[0]})." if len(seeds) == 1 else
            f"Mean ± sample standard deviation over seeds {seed_list(seeds)}.")
    notes = [chance_note(cells, spec, seeds, resamples, bootstrap_seed)]
    if spec.significance:
        notes.append(significance_note(cells, spec.slot, seeds, resamples, bootstrap_seed))
    if first.source != spec.slot:
        notes.append(f"Demo data: these cells ran on {first.source}, a stand-in for {slot.title}; the paper's "
                     "numbers are for the real dataset, differences are not meaningful.")
    return Table(spec, columns, rows, f"{what} {runs}", tuple(notes))


def chance_note(cells: Mapping[CellKey, Cell], spec: TableSpec, seeds: Sequence[int], resamples: int = 10_000,
                bootstrap_seed: int = 0) -> str:
    """One line: what a method that learned nothing scores on this test split, and each row's
    distance from it with a paired bootstrap over the items (per query, AP against that query's
    expected random AP; per triplet, correct against 1/2). The chance level is the same for every
    cell of a slot: the test split depends on neither the method nor the seed."""
    task = SLOTS[spec.slot].task
    first = cells[(spec.slot, spec.rows[0], seeds[0])]
    if task is RETRIEVAL:
        chance = 100.0 * first.per_item["chance_ap"].to_numpy(dtype=float)
        level = (f"a random ranking scores an expected MAP of {metric_value(first, 'map_chance'):.2f} on this test "
                 "split")
    else:
        chance = np.full(len(first.per_item), 50.0)
        level = "random embeddings predict 50.00% of the triplets"
    above, not_above = [], []
    for variant in spec.rows:
        b = paired_bootstrap(item_scores(cells, spec.slot, variant, seeds), chance, resamples, bootstrap_seed)
        text = f"{VARIANT_LABELS[variant]} {b.difference:+.2f} [{b.low:+.2f}, {b.high:+.2f}]"
        (above if b.low > 0 else not_above).append(text)
    verdict = []
    if above:
        verdict.append(f"above chance: {', '.join(above)}")
    if not_above:
        verdict.append(f"not clearly above: {', '.join(not_above)}")
    return (f"Chance: {level}. Each row minus chance, 95% CI (paired bootstrap over {len(chance):,} {task.items}, "
            f"{resamples:,} resamples): {'; '.join(verdict)}.")


def significance_note(cells: Mapping[CellKey, Cell], slot: str, seeds: Sequence[int], resamples: int = 10_000,
                      bootstrap_seed: int = 0) -> str:
    """One line: AG-MAN against the slot's best baseline by the headline number."""
    task = SLOTS[slot].task
    headline = {v: np.mean([metric_value(cells[(slot, v, s)], task.headline) for s in seeds]) for v in BASELINES}
    best = max(BASELINES, key=headline.__getitem__)  # the first in paper order on a tie
    check_paired(cells[(slot, "agman", seeds[0])], cells[(slot, best, seeds[0])], task)
    b = paired_bootstrap(item_scores(cells, slot, "agman", seeds), item_scores(cells, slot, best, seeds),
                         resamples, bootstrap_seed)
    p = f"= {b.p_value:.4f}" if b.p_value >= 0.0001 else "< 0.0001"
    over = f"{b.n_items:,} {task.items}" + (f" averaged over seeds {seed_list(seeds)};" if len(seeds) > 1 else ",")
    return (f"AG-MAN vs {VARIANT_LABELS[best]}: {b.difference:+.2f} {task.unit}, 95% CI [{b.low:+.2f}, "
            f"{b.high:+.2f}], p {p} (paired bootstrap over {over} {b.resamples:,} resamples)")
