"""The paper's qualitative figures (Sec. IV-B, Figures 5-8) from trained runs, plus training curves.

Every figure is drawn from a checkpoint and its slot's prepared test split; which images appear
is a seeded choice, so a figure changes only when the run, the data or the seed does. One module
per figure: ``retrieval`` (Figure 5), ``ranking`` (Figure 6), ``attention`` (Figure 7),
``triplets`` (Figure 8, Zappos50k), ``curves`` (validation score per epoch) and ``search_grid``
(``agman search``); ``layout`` places the tiles and draws the shared parts, ``prepared``
reads the test split, ``slot`` draws every figure of one slot.
"""

from agman.reports.figures.search_grid import search_grid
from agman.reports.figures.slot import SlotRuns, slot_figures

__all__ = ["SlotRuns", "search_grid", "slot_figures"]
