"""The paper's Tables 2-10 rebuilt from the evaluated cells, each number set beside the paper's.

Which cells fill which table is ``agman.experiments.TABLES``; a cell's report folder is
described in ``agman.reports.cell_report``, written by the DVC stage ``cell@<slot>-<variant>``
(which trains and evaluates every seed of the cell). ``write_tables`` reads every cell Tables
2-10 need and writes ``table{2..10}.{md,csv,tex}`` plus a ``README.md`` holding all tables in
reading order.

Numbers. Ours at the precision the paper prints its own: MAPs as percentages with 4 decimals
(Tables 2, 3, 5-10), Table 4's accuracy with 2 and its loss with 4; with several seeds a
number is the mean ± sample standard deviation (ddof=1) over seeds. The best value of each column
is bold and the second best underlined, as in the paper, in the column's direction (the loss is
better lower); marks compare the numbers as printed, so values that print the same tie, and every
tied row gets the mark (dense ranking: after a tie for best, the next distinct value is second).

Layout. The Markdown keeps the paper's shape (one row per method, one column per metric) and puts
the paper's number and the difference in small print under ours in the same cell
(``62.8788<br><sub>paper 62.8788, Δ +0.0000</sub>``): separate sub-columns would triple FashionAI's nine
metric columns to 27, too wide to read on GitHub, and a second row per method would separate the
comparison from the bold/underline ranking it sits beside. The CSV is for machines, so every part
gets its own column (``<col>``, ``<col>_std``, ``<col>_paper``, ``<col>_delta``); the LaTeX is a
booktabs table with the paper's number and the difference in parentheses, in script size.

Significance (under Tables 2-4). AG-MAN is compared with the best baseline of its slot (by MAP,
or accuracy on Zappos50k) on the paired per-item rows (AP per query, correct per triplet), so the
mean difference is exactly the difference of the headline numbers. See
``statistics.paired_bootstrap``.

Modules: ``build`` (columns, marks, entries and the notes of one table), ``statistics`` (the
paired bootstrap), ``render`` (Markdown, CSV, LaTeX, README) and ``write`` (every file, into a
folder).
"""

from agman.reports.tables.write import render_tables, write_tables

__all__ = ["render_tables", "write_tables"]
