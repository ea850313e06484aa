"""The MLflow runs of one cell and seed (training, and evaluation as its child), named
``<cell> seed<k>`` and ``<cell> seed<k> test`` and tagged so that the UI can filter one table's
rows (``tags.table_5 = 'true'``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from agman.config import Config, flatten, to_dict
from agman.data.prepared import PreparedData
from agman.device import pick_device
from agman.experiments import tables_of
from agman.tracking.datasets import CONTEXTS, split_dataset
from agman.tracking.mlflow_run import MlflowRun, system_metrics

log = logging.getLogger(__name__)

#: The splits each stage's run reads: training fits on train and picks its checkpoint on valid.
STAGE_SPLITS = {"train": ("train", "valid"), "evaluate": ("test",)}


def run_name(cell: str, seed: int, stage: str) -> str:
    return f"{cell} seed{seed}" + (" test" if stage == "evaluate" else "")


def cell_tracker(cfg: Config, stage: str, cell: str, data: PreparedData,
                 parent_run_id: str | None = None) -> Callable[[str | None], MlflowRun] | None:
    """``factory(run_id)``: a new run (``run_id`` None) or the interrupted one reopened; None when
    ``$AGMAN_NO_MLFLOW`` is set. ``data`` is the cached data the run reads."""
    if os.environ.get("AGMAN_NO_MLFLOW"):
        return None
    slot, variant = cfg.cells[cell].slot, cfg.cells[cell].variant
    tables = tables_of(slot, variant)
    tags = {"dataset": slot, "source": cfg.data.dataset, "variant": variant, "cell": cell,
            "seed": str(cfg.train.seed), "profile": cfg.profile, "tables": " ".join(map(str, tables)),
            **{f"table_{t}": "true" for t in tables}}
    # The run's own settings; the other cells' and slots' entries are not what this run used.
    run_cfg = {k: v for k, v in to_dict(cfg).items() if k not in ("datasets", "variants", "cells")}
    sampled = system_metrics(pick_device(cfg.train.device).type == "cuda")

    def new_run() -> MlflowRun:
        inputs = [(split_dataset(data, split, cfg.data.dataset), CONTEXTS[split]) for split in STAGE_SPLITS[stage]]
        run = MlflowRun(stage, flatten(run_cfg), name=run_name(cell, cfg.train.seed, stage), profile=cfg.profile,
                        parent_run_id=parent_run_id, tags=tags, inputs=inputs, system_metrics=sampled)
        run.log_dict(run_cfg, "config.json")
        return run

    def factory(run_id: str | None) -> MlflowRun:
        if run_id is None:
            return new_run()
        try:
            return MlflowRun.reopen(run_id, system_metrics=sampled)
        except Exception as err:  # e.g. mlflow.db deleted since the interrupted run
            log.warning("cannot reopen MLflow run %s (%s); logging the resumed training to a new run", run_id, err)
            return new_run()

    return factory
