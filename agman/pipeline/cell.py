"""Stage ``cell@<cell>``: train a table cell once per seed of ``train.seeds``, then evaluate each
seed's best checkpoint on the test split.

A finished run of the same config, data and training code is reused (``agman.training.loop``), so
a change to the evaluation code only re-evaluates. Writes ``runs/<slot>/<variant>/seed<k>/``,
``reports/curves/...``, ``reports/cells/<slot>/<variant>/seed<k>/`` and the DVC metrics file
``reports/metrics/<cell>.json`` (the mean over seeds).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from agman import portable
from agman.config import Config
from agman.data.prepared import PreparedData
from agman.device import pick_device
from agman.evaluation import SCORE, evaluate, flat_metrics, mean_over_seeds
from agman.inference import load_trained
from agman.pipeline.cache import load_cached
from agman.pipeline.entry import write_json
from agman.pipeline.layout import CellPaths, SlotPaths
from agman.pipeline.matrix import cell_config
from agman.reports.cell_report import write_cell_report
from agman.tracking.cell_runs import cell_tracker
from agman.training import distributed
from agman.training.loop import TrainPaths, check_graphs, train

log = logging.getLogger(__name__)


def cell_paths(cfg: Config, cell: str) -> CellPaths:
    return CellPaths(cfg.cells[cell].slot, cfg.cells[cell].variant)


def run(cfg: Config, cell: str) -> None:
    """Train every seed, then (not under torchrun, where the ranks only train) evaluate them."""
    if cfg.train.portable:
        portable.enter()  # before this process computes anything
    run_train(cfg, cell)
    if not distributed.launched():
        run_evaluate(cfg, cell)


def run_train(cfg: Config, cell: str) -> None:
    """Train a cell once per seed of ``train.seeds``; each seed resumes on its own.

    With ``train.nproc`` > 1 and not already under torchrun, the stage runs itself again under
    ``torchrun --standalone --nproc_per_node <nproc>`` and waits for it. With ``$AGMAN_GPUS`` set
    (parallel jobs, docs/multi-gpu.md) it first takes ``nproc`` GPUs of that pool that no
    other job holds.
    """
    if not distributed.launched():
        distributed.claim_gpus(cfg.train.nproc)  # before anything asks CUDA for its devices
        if cfg.train.nproc > 1:
            check_graphs(cfg.train, pick_device(cfg.train.device), cfg.train.nproc)  # before the ranks start
            _relaunch_under_torchrun(cfg.train.nproc, cell)
            return
    paths = cell_paths(cfg, cell)
    data = load_cached(paths.slot)
    try:
        for seed in cfg.train.seeds:
            run_cfg = cell_config(cfg, cell, seed)
            state = train(run_cfg, data, TrainPaths(triplet_dir=SlotPaths(paths.slot).triplets,
                                                    out_dir=paths.run(seed), curves=paths.curves(seed)),
                          tracker_factory=cell_tracker(run_cfg, "train", cell, data))
            log.info("%s seed %d: best validation %s %.4f at epoch %d", cell, seed, SCORE[data.task],
                     state.best_score, state.best_epoch)
    finally:
        distributed.teardown()


def _relaunch_under_torchrun(nproc: int, cell: str) -> None:
    """``python -m stages.cell <cell>`` again, as ``nproc`` processes under torchrun (they train;
    the launching process evaluates once they are done)
    (``--standalone``: a free local port, so parallel jobs do not collide)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "stages.cell", cell]
    log.info("train.nproc = %d: %s", nproc, " ".join(cmd))
    rc = subprocess.run(cmd, check=False).returncode
    if rc:
        raise SystemExit(rc)


def run_evaluate(cfg: Config, cell: str) -> dict:
    """Evaluate every seed of a cell on the test split; the DVC metrics file holds their mean."""
    paths = cell_paths(cfg, cell)
    data = load_cached(paths.slot)
    per_seed = [_evaluate_seed(cell_config(cfg, cell, seed), cell, data, seed) for seed in cfg.train.seeds]
    metrics = mean_over_seeds(per_seed)
    write_json(paths.metrics, metrics)
    return metrics


def _evaluate_seed(cfg: Config, cell: str, data: PreparedData, seed: int) -> dict:
    paths = cell_paths(cfg, cell)
    run_dir = paths.run(seed)
    trained = load_trained(TrainPaths.best_of(run_dir), cfg.train.device)
    test = evaluate(trained.model, data, "test", cfg, trained.device)  # autocast on the forward only
    score = SCORE[data.task]
    test.pop("score")
    per_item = test.pop("per_item")
    metrics = {**test, "best_epoch": trained.epoch, f"val_{score}": trained.val[score]}
    report = paths.report(seed)
    write_cell_report(report, metrics, per_item, {"dataset": paths.slot, "source": cfg.data.dataset,
                                                  "variant": paths.variant, "seed": seed, "profile": cfg.profile,
                                                  "attributes": data.attributes})
    if data.task == "retrieval":
        log.info("%s seed %d: test MAP %.4f (macro %.4f) over %d queries", cell, seed, test["map"], test["map_macro"],
                 test["n_queries"])
    else:
        log.info("%s seed %d: test triplet accuracy %.4f, average loss %.4f over %d triplets", cell, seed,
                 test["accuracy"], test["loss"], test["n_triplets"])
    run_json = TrainPaths.run_json_of(run_dir)
    parent = json.loads(run_json.read_text())["mlflow_run_id"] if run_json.is_file() else None
    factory = cell_tracker(cfg, "evaluate", cell, data, parent_run_id=parent)
    if factory is not None:
        run = factory(None)
        run.log_metrics(flat_metrics(test, "test"))
        run.log_artifact(report / "metrics.json")
        run.end()
    return metrics
