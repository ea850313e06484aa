"""Every table file from the cells, rendered in memory and written into a folder of its own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agman.experiments import TABLES
from agman.io import write_folder_atomically
from agman.reports.cell_report import collect
from agman.reports.tables.build import build_table, load_paper_tables
from agman.reports.tables.render import readme, to_csv, to_latex, to_markdown


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
