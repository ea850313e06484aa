"""Where every stage reads and writes: the one place the pipeline's paths are spelled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Each stage's slice of the resolved config (written by ``resolve``).
PARAMS_DIR = Path("build/params")
#: Per cell and seed: metrics.json, per_item.csv, cell.json (``agman.reports.cell_report``).
CELLS_DIR = Path("reports/cells")
CURVES_DIR = Path("reports/curves")
METRICS_DIR = Path("reports/metrics")
#: Every cell's headline number (written by ``tables``; ``agman.reports.summary``).
SUMMARY_PATH = METRICS_DIR / "summary.json"
TABLES_DIR = Path("reports/tables")
FIGURES_DIR = Path("reports/figures")
RUNS_DIR = Path("runs")
#: The user's own files for the real datasets (archives, annotation files), one folder per slot.
RAW_DIR = Path("data/raw")


@dataclass(frozen=True)
class SlotPaths:
    """Where a table slot's data stages write."""

    slot: str

    @property
    def root(self) -> Path:
        return Path("data") / self.slot

    @property
    def raw(self) -> Path:
        return RAW_DIR / self.slot

    @property
    def manifest(self) -> Path:
        return self.root / "download.json"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def triplets(self) -> Path:
        return self.root / "triplets"


@dataclass(frozen=True)
class CellPaths:
    """Where a cell's stage writes; one subfolder or file per seed."""

    slot: str
    variant: str

    @property
    def name(self) -> str:
        return f"{self.slot}-{self.variant}"

    def run(self, seed: int) -> Path:
        return RUNS_DIR / self.slot / self.variant / f"seed{seed}"

    def curves(self, seed: int) -> Path:
        return CURVES_DIR / self.slot / self.variant / f"seed{seed}.csv"

    def report(self, seed: int) -> Path:
        return CELLS_DIR / self.slot / self.variant / f"seed{seed}"

    @property
    def metrics(self) -> Path:
        return METRICS_DIR / f"{self.name}.json"
