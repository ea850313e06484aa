"""The MLflow runs of one cell and seed (training, and evaluation as its child), tagged so that the
UI can filter one table's rows (``tags.table_5 = 'true'``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from agman.config import Config, flatten, to_dict
from agman.experiments import tables_of
from agman.tracking.mlflow_run import MlflowRun

log = logging.getLogger(__name__)


def cell_tracker(cfg: Config, stage: str, cell: str,
                 parent_run_id: str | None = None) -> Callable[[str | None], MlflowRun] | None:
    """``factory(run_id)``: a new run (``run_id`` None) or the interrupted one reopened; None when
    ``$AGMAN_NO_MLFLOW`` is set."""
    if os.environ.get("AGMAN_NO_MLFLOW"):
        return None
    slot, variant = cfg.cells[cell].slot, cfg.cells[cell].variant
    tables = tables_of(slot, variant)
    tags = {"dataset": slot, "source": cfg.data.dataset, "variant": variant, "cell": cell,
            "seed": str(cfg.train.seed), "profile": cfg.profile, "tables": " ".join(map(str, tables)),
            **{f"table_{t}": "true" for t in tables}}
    # The run's own settings; the other cells' and slots' entries are not what this run used.
    run_cfg = {k: v for k, v in to_dict(cfg).items() if k not in ("datasets", "variants", "cells")}

    def new_run() -> MlflowRun:
        run = MlflowRun(stage, flatten(run_cfg), parent_run_id=parent_run_id, tags=tags)
        run.log_dict(run_cfg, "config.json")
        return run

    def factory(run_id: str | None) -> MlflowRun:
        if run_id is None:
            return new_run()
        try:
            return MlflowRun(stage, {}, run_id=run_id)
        except Exception as err:  # e.g. mlflow.db deleted since the interrupted run
            log.warning("cannot reopen MLflow run %s (%s); logging the resumed training to a new run", run_id, err)
            return new_run()

    return factory
