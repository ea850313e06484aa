"""``agman parallel``: the table cells trained several at a time, in this workspace, so that
``dvc repro`` afterwards finds every cell's outputs and trains nothing (docs/multi-gpu.md).

    agman parallel --gpus 0,1 --jobs-per-gpu 1      # two GPUs, one cell on each at a time
    agman parallel --jobs 2                          # no GPU: two cells at a time on the CPU

1. ``dvc repro triplets``: the resolve and data stages, once, before the jobs share them.
2. ``dvc status``: the cells whose stage is not up to date, in params.yaml's order.
3. Each such cell's stage command as dvc.yaml has it (``python -m stages.cell <cell>``) in a
   process of its own, as many at a time as there are slots: with GPUs, ``$AGMAN_GPUS`` names
   each GPU jobs-per-GPU times and each job claims a slot (``distributed.claim_gpus``). A job's
   output goes to ``build/logs/<cell>.log``.
4. ``dvc commit`` of the cells that finished: their deps and outputs hashed into dvc.lock (their
   runs into DVC's cache) as ``dvc repro`` would have.
5. ``dvc repro``: what is left, the tables and the figures.

A job that fails or is killed fails the command, naming the cell, after the others finished
and were committed; running the command again resumes that cell from its ``last.pt`` (the run's
fingerprint) and retrains nothing that finished. Concurrent jobs share the MLflow store safely
(``agman.tracking.mlflow_run.store_lock``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agman.config import load_config
from agman.pipeline.entry import setup_logging
from agman.training.distributed import GPU_POOL_ENV

log = logging.getLogger(__name__)

LOGS = Path("build") / "logs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpus", default="", help="the GPUs to use, e.g. 0,1 (default: none, train on the CPU)")
    parser.add_argument("--jobs-per-gpu", type=int, default=1,
                        help="cells sharing each GPU (default 1: on an H200 more jobs added no images/s)")
    parser.add_argument("--jobs", type=int, default=1, help="without --gpus: cells at a time on the CPU")


def _dvc(*args: str, capture: bool = True) -> str:
    """``dvc <args>``; its output returned (``capture``) or shown as it runs."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=capture, text=True)
    if proc.returncode:
        said = " ".join((proc.stderr or proc.stdout).split())[-500:] if capture else "see above"
        raise RuntimeError(f"dvc {' '.join(args)} failed: {said}")
    return proc.stdout or ""


def stale_cells(cells: list[str]) -> list[str]:
    """The cells whose ``cell@<cell>`` stage ``dvc status`` reports changed, in ``cells``' order."""
    changed = {name.rsplit(":", 1)[-1] for name in json.loads(_dvc("status", "--json") or "{}")}
    return [cell for cell in cells if f"cell@{cell}" in changed]


def _slots(gpus: str, per_gpu: int, jobs: int, nproc: int) -> tuple[int, dict[str, str]]:
    """How many jobs run at once, and the environment that gives each its GPUs."""
    env = {k: v for k, v in os.environ.items() if k != GPU_POOL_ENV}
    names = [g.strip() for g in gpus.split(",") if g.strip()]
    if not names:
        if jobs < 1:
            raise ValueError(f"--jobs: {jobs} must be at least 1")
        return jobs, env
    if per_gpu < 1:
        raise ValueError(f"--jobs-per-gpu: {per_gpu} must be at least 1")
    env[GPU_POOL_ENV] = ",".join(g for g in names for _ in range(per_gpu))
    return max(1, len(names) * per_gpu // nproc), env  # a job of train.nproc processes takes nproc slots


def _run_cell(cell: str, env: dict[str, str]) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{cell}.log", "w") as out:
        return subprocess.run([sys.executable, "-m", "stages.cell", cell], env=env, stdout=out,
                              stderr=subprocess.STDOUT).returncode


def run(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = load_config()
    log.info("dvc repro triplets: the data stages")
    _dvc("repro", "triplets", capture=False)
    cells = stale_cells(list(cfg.cells))
    width, env = _slots(args.gpus, args.jobs_per_gpu, args.jobs, cfg.train.nproc)
    log.info("%d of %d cells to train, %d at a time%s: %s", len(cells), len(cfg.cells), width,
             f" ({GPU_POOL_ENV}={env[GPU_POOL_ENV]})" if GPU_POOL_ENV in env else "", " ".join(cells) or "none")
    with ThreadPoolExecutor(max_workers=width) as pool:
        codes = dict(zip(cells, pool.map(lambda cell: _run_cell(cell, env), cells), strict=True))
    done = [cell for cell, code in codes.items() if code == 0]
    if done:
        _dvc("commit", "--force", *(f"cell@{cell}" for cell in done))
    failed = [f"{cell} (exit {code}, {LOGS / cell}.log)" for cell, code in codes.items() if code]
    if failed:
        raise RuntimeError(f"cells failed: {', '.join(failed)}; the others are committed; run the same command "
                           "again to resume the failed ones")
    log.info("dvc repro: the tables and the figures")
    _dvc("repro", capture=False)
