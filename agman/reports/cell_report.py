"""The report of one evaluated cell and seed: written by the cell stage, read by the tables.

``<cells_root>/<slot>/<variant>/seed<k>/`` holds ``cell.json`` (its ``dataset`` is the slot, its
``source`` the data the cell ran on; also variant, seed, profile and the attribute names in the
model's index order), ``metrics.json`` (the test metrics) and ``per_item.csv`` (one row per test
query or triplet: the rows the significance tests pair).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agman.experiments import RETRIEVAL, SLOTS, TABLES, TableSpec, required_cells
from agman.io import write_folder_atomically

CELL_FILES = ("cell.json", "metrics.json", "per_item.csv")


class CellFormatError(ValueError):
    """A cell's files exist but lack something the tables need, or cells that must agree do not."""


def cell_name(slot: str, variant: str, seed: int) -> str:
    return f"{slot}/{variant}/seed{seed}"


def stage_name(slot: str, variant: str) -> str:
    """The DVC stage that trains and evaluates a cell, all its seeds (a foreach stage of dvc.yaml)."""
    return f"cell@{slot}-{variant}"


def cell_folder(cells_root: str | Path, slot: str, variant: str, seed: int) -> Path:
    return Path(cells_root) / slot / variant / f"seed{seed}"


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_cell_report(folder: Path, metrics: dict, per_item: pd.DataFrame, info: dict) -> None:
    """Replace ``folder`` with a cell's report: ``metrics``, ``per_item`` and ``info`` (cell.json)."""

    def render(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        (tmp / "metrics.json").write_text(_json_text(metrics), encoding="utf-8")
        per_item.to_csv(tmp / "per_item.csv", index=False)
        (tmp / "cell.json").write_text(_json_text(info), encoding="utf-8")

    write_folder_atomically(folder, render)


@dataclass(frozen=True)
class Cell:
    """One evaluated (slot, variant, seed), as read from its folder."""

    slot: str
    variant: str
    seed: int
    source: str  # the data actually used: the slot's name, or a demo stand-in's
    attributes: tuple[str, ...]  # attribute names in the slot's index order (empty for Zappos50k)
    metrics: Mapping[str, Any]
    per_item: pd.DataFrame

    @property
    def name(self) -> str:
        return cell_name(self.slot, self.variant, self.seed)


CellKey = tuple[str, str, int]  # (slot, variant, seed)


def collect(cells_root: str | Path, seeds: Sequence[int], tables: Iterable[TableSpec] = TABLES) -> dict[CellKey, Cell]:
    """Read every cell the tables need, for every seed.

    Raises FileNotFoundError listing every absent cell or cell file with the DVC stage that
    makes it (so one run says everything left to do), and CellFormatError when a present cell
    lacks a value the tables print or the cells of one slot disagree on data or attributes.
    """
    if not seeds:
        raise ValueError("seeds: at least one seed is needed")
    keys = [(slot, variant, seed) for slot, variant in required_cells(tables) for seed in seeds]
    missing = []
    for slot, variant, seed in keys:
        folder = cell_folder(cells_root, slot, variant, seed)
        absent = "folder" if not folder.is_dir() else ", ".join(f for f in CELL_FILES if not (folder / f).is_file())
        if absent:
            missing.append(f"{cell_name(slot, variant, seed)} (no {absent} in {folder}): "
                           f"dvc repro {stage_name(slot, variant)}")
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of the {len(keys)} evaluated cells that Tables 2-10 need are missing or incomplete "
            f"under {cells_root}; produce them with:\n  " + "\n  ".join(missing))
    cells = {key: read_cell(cell_folder(cells_root, *key), *key) for key in keys}
    _check_slots_agree(cells.values())
    return cells


def read_cell(folder: Path, slot: str, variant: str, seed: int) -> Cell:
    """The report in ``folder``, checked to be the cell (slot, variant, seed) and to hold what the tables print."""
    name = cell_name(slot, variant, seed)
    info = json.loads((folder / "cell.json").read_text(encoding="utf-8"))
    for key in ("dataset", "variant", "seed", "source", "attributes"):
        if key not in info:
            raise CellFormatError(f"{name}: {folder / 'cell.json'} has no {key!r}")
    for key, expected in (("dataset", slot), ("variant", variant), ("seed", seed)):
        if info[key] != expected:
            raise CellFormatError(f"{name}: {folder / 'cell.json'} says {key} = {info[key]!r}, but its folder is "
                                  f"the cell of {key} {expected!r}")
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    task = SLOTS[slot].task
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
    return Cell(slot, variant, seed, info["source"], tuple(info["attributes"]), metrics, per_item)


def _check_slots_agree(cells: Iterable[Cell]) -> None:
    """A table mixing demo and real data, or differently ordered attributes, would be meaningless."""
    first: dict[str, Cell] = {}
    for cell in cells:
        ref = first.setdefault(cell.slot, cell)
        for what in ("source", "attributes"):
            if getattr(cell, what) != getattr(ref, what):
                raise CellFormatError(f"{cell.name} has {what} {getattr(cell, what)!r} but {ref.name} has "
                                      f"{getattr(ref, what)!r}: one table cannot mix them")
