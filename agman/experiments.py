"""The experiment catalogue: the table slots, the variants' labels, and which cells fill Tables 2-10.

A slot is one of the paper's datasets as a table column of cells (fashionai, deepfashion, zappos);
the data a slot's cells actually ran on (``data.dataset``, e.g. ``demo_fashionai``) may be a demo
stand-in. A cell is one (slot, variant) pair, trained and evaluated for every seed. Standard
library only: training imports this for its MLflow tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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
    """What a slot's cells report, and how their per-item rows are compared."""

    headline: str  # metrics.json key of the number a method is ranked by
    unit: str  # what a difference of the headline (in percentage points) is called
    items: str  # what one per_item.csv row is
    pair_key: str  # per_item.csv column that must agree row by row between paired cells
    score: str  # per_item.csv column whose mean is the headline, as a fraction


RETRIEVAL = Task(headline="map", unit="MAP points", items="queries", pair_key="attribute", score="ap")
TRIPLET = Task(headline="accuracy", unit="accuracy points", items="triplets", pair_key="condition", score="correct")


@dataclass(frozen=True)
class Slot:
    title: str  # the dataset as the paper names it
    task: Task


#: The table slots. A slot's cells may run on a demo stand-in; cell.json ``source`` says which.
SLOTS = {
    "fashionai": Slot("FashionAI", RETRIEVAL),
    "deepfashion": Slot("DeepFashion", RETRIEVAL),
    "zappos": Slot("Zappos50k", TRIPLET),
}


@dataclass(frozen=True)
class TableSpec:
    """One of the paper's tables: which cells fill it and how it is laid out."""

    number: int
    title: str  # the paper's caption, shortened
    slot: str  # a key of SLOTS
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


def tables_of(slot: str, variant: str) -> tuple[int, ...]:
    """The tables a (slot, variant) cell appears in, e.g. (2, 5, 7) for FashionAI's AG-MAN."""
    return tuple(spec.number for spec in TABLES if spec.slot == slot and variant in spec.rows)


def required_cells(tables: Iterable[TableSpec] = TABLES) -> list[tuple[str, str]]:
    """(slot, variant) cells the tables read, in first-use order."""
    return list(dict.fromkeys((spec.slot, variant) for spec in tables for variant in spec.rows))
