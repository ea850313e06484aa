"""A built table as Markdown, CSV and LaTeX, and the README that holds every table."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from agman.reports.tables.build import Table, seed_list

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
        for column, entry in zip(table.columns, row.entries, strict=True):
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
        for column, entry in zip(table.columns, row.entries, strict=True):
            delta = entry.delta(column.decimals)
            values += [f"{entry.mean:.{column.decimals}f}",
                       "" if entry.std is None else f"{entry.std:.{column.decimals}f}",
                       "" if entry.paper is None else f"{entry.paper:.{column.decimals}f}",  # as printed
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
        for column, entry in zip(table.columns, row.entries, strict=True):
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
            f"`{cells_root}`, seeds {seed_list(seeds)}; do not edit by hand. Each table is also in "
            "`table<N>.md`, `table<N>.csv` and `table<N>.tex`. The paper's numbers come from "
            "`agman/reports/paper_tables.yaml`, transcribed from Xiao & Yamasaki, IEEE Access 2024.", ""]
    return "\n".join(head) + "\n" + "\n".join(to_markdown(t) for t in tables)

