"""One MLflow run per training and per evaluation, with the tags a DVC experiment needs.

The tracking URI is ``sqlite:///<repo root>/mlflow.db`` (absolute, so runs launched from a DVC
temp workspace land in the same database), where the repo root is ``DVC_ROOT`` when DVC runs
the stage. ``MLFLOW_TRACKING_URI`` overrides it, e.g. to point at a team's MLflow server.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXPERIMENT = "agman"


def project_root() -> Path:
    """``DVC_ROOT`` when set (DVC sets it for stage commands), else the nearest folder with .dvc/."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return here


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


class MlflowRun:
    """A thin wrapper: start (or resume) a run, log params once, metrics, artifacts, end."""

    def __init__(self, stage: str, params: dict[str, Any], run_id: str | None = None,
                 parent_run_id: str | None = None, tags: dict[str, str] | None = None):
        import mlflow  # here, not at the top: it takes seconds, and AGMAN_NO_MLFLOW runs never need it

        self._mlflow = mlflow
        mlflow.set_tracking_uri(tracking_uri())
        if run_id is None:
            experiment = mlflow.get_experiment_by_name(EXPERIMENT)
            if experiment is None:
                location = None
                if not os.environ.get("MLFLOW_TRACKING_URI"):
                    location = (project_root() / "mlruns").as_uri()
                experiment_id = mlflow.create_experiment(EXPERIMENT, artifact_location=location)
            else:
                experiment_id = experiment.experiment_id
            root = project_root()
            status = _git(root, "status", "--porcelain", "--untracked-files=no")
            all_tags = {
                "stage": stage,
                "git_commit": _git(root, "rev-parse", "HEAD") or "unknown",
                # The commit alone does not say what ran when tracked files were edited.
                "git_dirty": "unknown" if status is None else str(bool(status)).lower(),
                "dvc_exp_name": os.environ.get("DVC_EXP_NAME", "workspace"),
                "dvc_baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", "none"),
                **(tags or {}),
            }
            if parent_run_id:
                all_tags["mlflow.parentRunId"] = parent_run_id
            self.run = mlflow.start_run(experiment_id=experiment_id, tags=all_tags)
            mlflow.log_params({k: str(v) for k, v in params.items()})
        else:
            self.run = mlflow.start_run(run_id=run_id)
        self.run_id = self.run.info.run_id
        log.info("MLflow run %s (%s) at %s", self.run_id, stage, tracking_uri())

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_artifact(self, path: str | Path) -> None:
        self._mlflow.log_artifact(str(path))

    def log_dict(self, data: dict, name: str) -> None:
        self._mlflow.log_dict(data, name)

    def end(self, status: str = "FINISHED") -> None:
        self._mlflow.end_run(status=status)
