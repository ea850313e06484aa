"""The validation score per epoch of every variant of a slot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from agman.reports.figures.layout import CAPTION_SIZE, CURVES_SIZE, DPI, LABEL_SIZE, add_title, save_png


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
    add_title(fig, size, title, subtitle)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=CAPTION_SIZE, frameon=False)
    return save_png(fig, out)
