"""Stage ``figures``: Figures 5-8 and the validation curves from the first seed's run of each
slot's cells (``reports/figures/``, agman.reports.figures).

AG-MAN's run of every slot is required (it draws Figures 5, 7 and 8); the baselines join Figure 6
and every variant the curves when they have a run. The folder is replaced as a whole; each PNG is
also an artifact of one MLflow run tagged stage=figures.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from agman.config import Config
from agman.experiments import BASELINES
from agman.io import write_folder_atomically
from agman.pipeline.cache import load_cached
from agman.pipeline.layout import FIGURES_DIR, CellPaths
from agman.reports.figures import SlotRuns, slot_figures
from agman.tracking import MlflowRun
from agman.training.checkpoint import BEST_CHECKPOINT

log = logging.getLogger(__name__)


def run(cfg: Config, slots: list[str] | None = None) -> list[Path]:
    seed = cfg.train.seeds[0]
    slots = list(cfg.datasets) if slots is None else slots
    for slot in slots:  # every slot checked before minutes of drawing
        checkpoint = CellPaths(slot, "agman").run(seed) / BEST_CHECKPOINT
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: AG-MAN's checkpoint of slot {slot} (seed {seed}) is missing; the "
                                    f"figures need it: run `dvc repro cell@{slot}-agman`")
    written: list[tuple[Path, float]] = []

    def render(tmp: Path) -> None:
        for slot in slots:
            variants = ["agman"] + [c.variant for c in cfg.cells.values() if c.slot == slot and c.variant != "agman"]
            checkpoints, curves = {}, {}
            for variant in variants:
                paths = CellPaths(slot, variant)
                best = paths.run(seed) / BEST_CHECKPOINT
                # Figure 6 compares the methods, as the paper's does; the ablations get curves only.
                method = variant in ("agman", *BASELINES)
                if method and best.is_file():
                    checkpoints[variant] = best
                elif method:
                    log.info("%s: no run of %s (seed %d); left out of the figures", slot, variant, seed)
                if paths.curves(seed).is_file():
                    curves[variant] = paths.curves(seed)
            written.extend(slot_figures(SlotRuns(slot, load_cached(slot), checkpoints, curves), tmp, seed,
                                        cfg.train.device))

    write_folder_atomically(FIGURES_DIR, render)
    pngs = [FIGURES_DIR / path.name for path, _ in written]
    if not os.environ.get("AGMAN_NO_MLFLOW"):
        run = MlflowRun("figures", {"seed": seed, "profile": cfg.profile, "slots": ",".join(slots)},
                        name="figures", profile=cfg.profile, tags={"profile": cfg.profile})
        for png in pngs:
            run.log_artifact(png)
        run.log_metrics({f"seconds_{path.stem}": seconds for path, seconds in written})
        run.end()
    log.info("wrote %d figures to %s", len(pngs), FIGURES_DIR)
    return pngs
