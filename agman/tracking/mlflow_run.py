"""One MLflow run per training and per evaluation, with the tags a DVC experiment needs.

The tracking URI is ``sqlite:///<repo root>/mlflow.db`` (absolute, so runs launched from a DVC
temp workspace land in the same database), where the repo root is ``DVC_ROOT`` when DVC runs
the stage. ``MLFLOW_TRACKING_URI`` overrides it, e.g. to point at a team's MLflow server.
Each profile has its own experiment, ``agman-<profile>``, so that only comparable runs sit
together; ``MLFLOW_EXPERIMENT_NAME`` overrides it.

Jobs running in parallel share the SQLite file, and MLflow creates and migrates its schema on a
process's first access: two processes doing that at once break it ("Online migration expected to
match one row"). So every access of a local SQLite store here holds an exclusive lock on the file
``<database>.lock`` (``store_lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: MLflow's own switch for system metrics; when set, it decides instead of the run's device.
SYSTEM_METRICS_ENV = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"


def project_root() -> Path:
    """``DVC_ROOT`` when set (DVC sets it for stage commands), else the nearest folder with .dvc/."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return here


def project_database() -> str:
    return f"sqlite:///{project_root() / 'mlflow.db'}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or project_database()


def experiment_name(profile: str) -> str:
    """``agman-<profile>`` (a demo run never sits beside a paper run), or ``$MLFLOW_EXPERIMENT_NAME``."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or f"agman-{profile}"


def system_metrics(on_cuda: bool) -> bool | None:
    """Whether a run samples CPU, memory and GPU use: on CUDA runs only (on the CPU the sampling
    thread competes with training for the cores), unless ``$MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``
    says otherwise (None lets MLflow read it)."""
    return None if os.environ.get(SYSTEM_METRICS_ENV) else on_cuda


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _experiment_id(mlflow, name: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # With the project's database, artifacts go beside it, not into the current folder (a DVC temp
    # workspace); a server keeps its own. Compared by URI: mlflow.set_tracking_uri sets
    # $MLFLOW_TRACKING_URI, so the variable alone does not say whether the user chose a server.
    location = (project_root() / "mlruns").as_uri() if tracking_uri() == project_database() else None
    return mlflow.create_experiment(name, artifact_location=location)


@contextlib.contextmanager
def store_lock() -> Iterator[None]:
    """Exclusive use of the tracking store while the block runs, when it is a local SQLite file
    (a server serialises its own writes); the kernel drops the lock if the process dies."""
    uri = tracking_uri()
    if not uri.startswith("sqlite:///"):
        yield
        return
    with open(uri.removeprefix("sqlite:///") + ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _locked(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with store_lock():
            return method(*args, **kwargs)

    return wrapper


def _mlflow():
    import mlflow  # here, not at the top: it takes seconds, and AGMAN_NO_MLFLOW runs never need it

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


class MlflowRun:
    """A thin wrapper: start a run, log params and inputs once, metrics, artifacts, end.

    A new run is named ``name``, in the experiment of ``profile``. ``inputs`` are
    ``(mlflow dataset, context)`` pairs, e.g. the split a run trained on with context "training".
    """

    @_locked
    def __init__(self, stage: str, params: dict[str, Any], *, name: str, profile: str,
                 parent_run_id: str | None = None, tags: dict[str, str] | None = None,
                 inputs: Sequence[tuple[Any, str]] = (), system_metrics: bool | None = False):
        mlflow = _mlflow()
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
        run = mlflow.start_run(experiment_id=_experiment_id(mlflow, experiment_name(profile)), run_name=name,
                               tags=all_tags, log_system_metrics=system_metrics)
        mlflow.log_params({k: str(v) for k, v in params.items()})
        for dataset, context in inputs:
            mlflow.log_input(dataset, context=context)
        self._started(mlflow, run)

    @classmethod
    @_locked
    def reopen(cls, run_id: str, system_metrics: bool | None = False) -> MlflowRun:
        """An interrupted run, resumed with the name, experiment, params and inputs it started with."""
        mlflow = _mlflow()
        self = cls.__new__(cls)
        self._started(mlflow, mlflow.start_run(run_id=run_id, log_system_metrics=system_metrics))
        return self

    def _started(self, mlflow, run) -> None:
        self._mlflow, self.run, self.run_id = mlflow, run, run.info.run_id
        log.info("MLflow run %s (%s) at %s", self.run_id, run.info.run_name, tracking_uri())

    @_locked
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    @_locked
    def log_artifact(self, path: str | Path) -> None:
        self._mlflow.log_artifact(str(path))

    @_locked
    def log_dict(self, data: dict, name: str) -> None:
        self._mlflow.log_dict(data, name)

    @_locked
    def end(self, status: str = "FINISHED") -> None:
        self._mlflow.end_run(status=status)
