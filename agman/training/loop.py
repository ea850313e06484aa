"""The training loop (Sec. IV-A): Adam + StepLR, triplet + classification loss, per-epoch
validation (MAP, or triplet prediction accuracy on Zappos50k), best checkpoint by that score,
atomic checkpoints and resume.

One file of triplets per epoch comes from the ``triplets`` stage. Each batch stacks anchors,
positives and negatives into one forward pass of 3B images; the step itself, eager or replayed
from a CUDA graph, is ``agman.training.step``. Nothing in an epoch waits for the GPU but the
loss checks every ``train.check_every`` batches (``agman.training.loss_log``).

The same loop runs one process or several (``torchrun``; ``agman.training.distributed`` has the
scheme): each rank trains on its part of every global batch inside DistributedDataParallel, and
rank 0 alone validates and writes checkpoints, curves and MLflow logs while the others wait.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from agman import codegraph
from agman.config import Config, ConfigError, TrainConfig, fingerprint, to_dict
from agman.data.feed import Feed, build_feed
from agman.data.images import draw_flips
from agman.data.prepared import PreparedData
from agman.device import pick_device, resolve_memory_format
from agman.evaluation import evaluate, flat_metrics
from agman.io import write_file_atomically
from agman.losses import build_weighting
from agman.models import build_model, model_params, trains_classification
from agman.training import distributed
from agman.training.checkpoint import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
    seed_everything,
)
from agman.training.loss_log import LossLog
from agman.training.step import (
    GraphedStep,
    StepSettings,
    TrainStep,
    build_optimizer,
    load_optimizer_state,
    optimizer_state,
    scheduler_state,
)

log = logging.getLogger(__name__)


#: Where the code digest stops: the evaluation code is left out on purpose, since what a change
#: there needs is a re-evaluation of the same weights, not a retraining. (The validation score
#: picks the best epoch, so a change to it that should pick another epoch needs the run deleted.)
NOT_TRAINING_CODE = ("agman.evaluation", "agman.metrics")


def training_modules() -> set[str]:
    """The project modules the training loop runs (``agman.codegraph``), less NOT_TRAINING_CODE."""
    return codegraph.closure([__name__], stop=NOT_TRAINING_CODE)


def code_digest() -> str:
    """SHA-256 over the training code: its syntax trees, so a comment or docstring edit retrains nothing."""
    return codegraph.code_digest(training_modules())


def data_digest(data: PreparedData, triplet_dir: Path) -> str:
    """SHA-256 over the prepared table, the cached images, the triplet lists and every epoch's
    triplet file."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(data.table, index=True).to_numpy().tobytes())
    if data.cache is not None:  # the pixels: same paths and labels may hold re-rendered images
        digest.update(data.cache.sha256.encode())
    for split in sorted(data.triplets):
        digest.update(data.triplets[split].tobytes())
    for path in sorted(triplet_dir.glob("epoch_*.npy")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class TrainPaths:
    triplet_dir: Path  # epoch_000.npy, epoch_001.npy, ...
    out_dir: Path  # the run folder: best.pt, last.pt, run.json
    curves: Path  # per-epoch CSV for DVC plots

    @property
    def best(self) -> Path:
        """The checkpoint of the best validation score: the one the test split is evaluated with."""
        return self.best_of(self.out_dir)

    @property
    def last(self) -> Path:
        """The checkpoint of the last finished epoch, with everything needed to resume."""
        return self.out_dir / LAST_CHECKPOINT

    @property
    def run_json(self) -> Path:
        """The run's MLflow run id, so that the evaluation logs as its child."""
        return self.run_json_of(self.out_dir)

    @staticmethod
    def best_of(run_dir: Path) -> Path:
        return Path(run_dir) / BEST_CHECKPOINT

    @staticmethod
    def run_json_of(run_dir: Path) -> Path:
        return Path(run_dir) / "run.json"


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    best_score: float = -math.inf  # validation MAP or accuracy (see agman.evaluation.SCORE)
    best_epoch: int = -1
    history: list[dict] = field(default_factory=list)
    run_id: str | None = None


def _write_curves(path: Path, history: list[dict]) -> None:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_file_atomically(path, out.getvalue())


#: Train settings that say how a run executes, not what it computes: the fingerprint leaves them
#: out, so a run may resume on another number of GPUs, or with or without CUDA graphs.
EXECUTION_KEYS = ("nproc", "sync_bn", "cuda_graphs", "check_every", "cudnn_benchmark")


def run_fingerprint(cfg: Config, data: PreparedData, triplet_dir: Path) -> str:
    """What ``last.pt`` must match to be resumed or reused: the config, the data (table, triplet
    lists, every epoch's triplet file), the training code, and of the ``model`` block only the keys
    the model reads (``model_params``: a baseline's run stays valid when ``model.aga.*`` changes).
    EXECUTION_KEYS are left out: the global batches and the step's function are the same."""
    train = {k: v for k, v in to_dict(cfg.train).items() if k not in EXECUTION_KEYS}
    return fingerprint(cfg.data.root, cfg.data.image_size, cfg.triplets, model_params(cfg.model), cfg.loss, train,
                       cfg.eval, data_digest(data, triplet_dir), code_digest())


def start_from(last: dict, fp: str, epochs: int, best_exists: bool) -> str:
    """What ``last.pt`` allows: ``reuse`` a finished run of the same fingerprint (its best.pt still
    there), ``resume`` an unfinished one, or start ``fresh`` (another config, data or code)."""
    if last.get("fingerprint") != fp:
        return "fresh"
    if last["state"]["epoch"] < epochs:
        return "resume"
    return "reuse" if best_exists else "fresh"


def improves(score: float, best: float) -> bool:
    """Whether an epoch's validation score replaces best.pt: strictly higher (a tie keeps the earlier epoch)."""
    return score > best


@dataclass
class _Run:
    """What one training run holds from its start to its end."""

    model: torch.nn.Module  # what checkpoints save; ``step`` trains it (in DDP under torchrun)
    weighting: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: TrainStep | GraphedStep
    feed: Feed
    device: torch.device


def check_graphs(tc: TrainConfig, device: torch.device, processes: int) -> bool:
    """Whether the step is replayed from a CUDA graph; ConfigError for graphs under DDP."""
    graphed = device.type == "cuda" and tc.cuda_graphs
    if graphed and processes > 1:
        raise ConfigError("train.cuda_graphs: the captured step does not run under DDP (train.nproc > 1); "
                          "set train.cuda_graphs: false to train on several GPUs")
    return graphed


def _build(cfg: Config, data: PreparedData, device: torch.device) -> _Run:
    """The model, loss weighting, optimiser, schedule and data feed of a run, on ``device``."""
    tc = cfg.train
    world = distributed.world_size()
    graphed = check_graphs(tc, device, world)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = tc.cudnn_benchmark
    seed_everything(tc.seed)
    model = build_model(cfg.model, len(data.attributes))
    if world > 1 and tc.sync_bn:
        model = distributed.sync_batchnorm(model, device)
    memory_format = resolve_memory_format(tc.memory_format, device)
    model = model.to(device).to(memory_format=memory_format)
    with_logits = trains_classification(cfg.model)
    weighting = build_weighting(cfg.loss, with_cls=with_logits).to(device)
    optimizer = build_optimizer([*model.parameters(), *weighting.parameters()], tc.lr, device)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=tc.lr_step, gamma=tc.lr_gamma)
    log.info("loss: triplet margin %.3g, weighting %s over %s; device %s, autocast %s, memory format %s, "
             "data feed %s, step %s%s", cfg.loss.margin, type(weighting).__name__, "+".join(weighting.weights()),
             device, tc.amp_dtype if device.type == "cuda" else "off", tc.memory_format, cfg.data.feed,
             "CUDA graph" if graphed else "eager",
             f"; {world} processes, {tc.batch_size // world} triplets each per batch, BatchNorm "
             f"{'synced' if tc.sync_bn else 'per process'}" if world > 1 else "")
    # DDP wraps what trains; ``model`` and ``weighting`` are what is saved.
    forward = distributed.wrap(model, device)
    forward = torch.compile(forward) if (device.type == "cuda" and tc.compile) else forward
    settings = StepSettings(cfg.loss.margin, with_logits, tc.amp_dtype, memory_format)
    step = TrainStep(forward, distributed.wrap(weighting, device), optimizer, settings, device)
    if graphed:
        step = GraphedStep(step, images=3 * tc.batch_size)
    feed = build_feed(cfg.data.feed, data.cache, device, cfg.data.num_workers)
    return _Run(model, weighting, optimizer, scheduler, step, feed, device)


def _restore(run: _Run, ckpt: dict, world: int) -> TrainState:
    """Load an unfinished run's ``last.pt`` into ``run``; its state."""
    run.model.load_state_dict(ckpt["model"])
    run.weighting.load_state_dict(ckpt["weighting"])
    load_optimizer_state(run.optimizer, ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    per_rank = ckpt.get("rng_ranks") or []
    restore_rng_states(per_rank[distributed.rank()] if len(per_rank) == world else ckpt["rng"])
    return TrainState(**ckpt["state"])


def train(cfg: Config, data: PreparedData, paths: TrainPaths, tracker_factory=None) -> TrainState:
    """Train, validate every epoch, keep ``best.pt`` and ``last.pt``; resume from ``last.pt``.

    ``last.pt`` is used only when its fingerprint (config, prepared data, triplet files and the
    training code) matches this run's: an unfinished run resumes, a finished one is reused as it
    is (so re-running a cell's stage after a change to the evaluation code only re-evaluates);
    otherwise training starts over. ``tracker_factory(run_id)`` returns an MlflowRun (resumed when
    ``run_id`` is given) or None to skip tracking.
    """
    tc = cfg.train
    device = distributed.setup(pick_device(tc.device))  # this rank's device when started by torchrun
    distributed.check_batch_size(tc.batch_size)
    fp = run_fingerprint(cfg, data, paths.triplet_dir)
    ckpt = load_checkpoint(paths.last) if paths.last.is_file() else None
    start = start_from(ckpt, fp, tc.epochs, paths.best.is_file()) if ckpt else "fresh"
    if start == "reuse":
        log.info("%s is a finished run of this config, data and code; reusing it", paths.last)
        state = TrainState(**ckpt["state"])
        if distributed.is_main():  # DVC deletes a stage's outputs before running it: write them again
            _write_curves(paths.curves, state.history)
        return state
    run = _build(cfg, data, device)
    state = TrainState()
    if start == "resume":
        state = _restore(run, ckpt, distributed.world_size())
        log.info("resuming from %s after epoch %d", paths.last, state.epoch)
    elif ckpt:
        log.info("%s belongs to another run (or its best.pt is gone); training from scratch", paths.last)

    main = distributed.is_main()  # rank 0 validates, saves and logs; the others wait at a barrier
    tracker = tracker_factory(state.run_id) if (tracker_factory and main) else None
    if tracker is not None:
        state.run_id = tracker.run_id
        write_file_atomically(paths.run_json, json.dumps({"mlflow_run_id": tracker.run_id}))
    status = "FAILED"
    try:
        _run_epochs(cfg, data, paths, run, state, fingerprint=fp, tracker=tracker)
        state = distributed.broadcast_object(state)  # every rank returns rank 0's history
        if tracker is not None:
            tracker.log_metrics({"best_val_score": state.best_score, "best_epoch": state.best_epoch})
            tracker.log_artifact(paths.curves)
        status = "FINISHED"
    finally:
        if tracker is not None:
            tracker.end(status)
    return state


def _run_epochs(cfg: Config, data: PreparedData, paths: TrainPaths, run: _Run, state: TrainState, *,
                fingerprint: str, tracker) -> None:
    """The epochs after ``state.epoch``: train, validate (rank 0), checkpoint; ``state`` is updated."""
    tc = cfg.train
    main = distributed.is_main()
    epochs = tqdm(range(state.epoch, tc.epochs), desc="epochs", unit="epoch", initial=state.epoch,
                  total=tc.epochs, disable=not main)
    for epoch in epochs:
        record = _train_epoch(cfg, run, data, paths, epoch)
        record.update({f"weight_{k}": v for k, v in run.weighting.weights().items()})
        record["lr"] = float(run.optimizer.param_groups[0]["lr"])
        run.scheduler.step()
        state.epoch = epoch + 1
        if main:
            val = evaluate(run.model, data, "valid", cfg, run.device, feed=run.feed)  # autocast on the forward only
            val.pop("per_item")  # per-query rows are for the test tables, not the checkpoint
            record.update(flat_metrics(val, "val"))
            state.history.append(record)
            epochs.set_postfix(loss=f"{record['loss']:.4f}", val=f"{val['score']:.4f}")
            log.info("epoch %d: %s", epoch + 1, json.dumps({k: round(v, 5) for k, v in record.items()}))
            if tracker is not None:
                tracker.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=epoch + 1)
            if improves(val["score"], state.best_score):
                state.best_score, state.best_epoch = val["score"], epoch + 1
                save_checkpoint(paths.best, {
                    "model": run.model.state_dict(), "config": to_dict(cfg), "attributes": data.attributes,
                    "epoch": epoch + 1, "val": val,
                })
        # Every rank's random stream, for resuming each; the other ranks wait here (and at the
        # barrier below) while rank 0 validates and saves.
        rngs = distributed.gather_object(rng_states())
        if main:
            save_checkpoint(paths.last, {
                "fingerprint": fingerprint, "model": run.model.state_dict(), "weighting": run.weighting.state_dict(),
                "optimizer": optimizer_state(run.optimizer), "scheduler": scheduler_state(run.scheduler),
                "rng": rngs[0], **({"rng_ranks": rngs} if len(rngs) > 1 else {}), "state": state.__dict__,
            })
            _write_curves(paths.curves, state.history)
        distributed.barrier()


def _epoch_triplets(paths: TrainPaths, epoch: int, epochs: int) -> np.ndarray:
    triplet_file = paths.triplet_dir / f"epoch_{epoch:03d}.npy"
    if not triplet_file.is_file():
        raise FileNotFoundError(f"{triplet_file}: no triplets for epoch {epoch + 1} (train.epochs = {epochs}); "
                                "rerun the triplets stage")
    return np.load(triplet_file)


def _train_epoch(cfg: Config, run: _Run, data: PreparedData, paths: TrainPaths, epoch: int) -> dict:
    """One epoch over this rank's part of each global batch; the losses returned are means over
    every rank's triplets."""
    tc = cfg.train
    triplets = _epoch_triplets(paths, epoch, tc.epochs)  # (T, 4) table rows a, p, n and the attribute
    batches = distributed.ShardedBatches(len(triplets), tc.batch_size, distributed.rank(), distributed.world_size())
    dropped = len(triplets) - sum(batches.global_size(b) for b in range(len(batches)))
    if dropped:
        log.warning("epoch %d: the last %d triplets are fewer than the %d processes and are left out", epoch + 1,
                    dropped, distributed.world_size())
    n_batches = len(batches) if not tc.max_batches else min(len(batches), tc.max_batches)
    rows = [batches[b] for b in range(n_batches)]
    entries = [data.entries[triplets[r.start:r.stop, :3]].T.reshape(-1) for r in rows]  # (3n,) a, then p, then n
    flips = torch.from_numpy(draw_flips(tc.seed, epoch, len(triplets))).to(run.device)  # (T, 3)
    attrs = torch.from_numpy(triplets[:, 3]).to(run.device)  # (T,)
    losses = LossLog(n_batches, run.device, epoch, tc.check_every)
    run.model.train()
    bar = tqdm(run.feed(entries), desc=f"epoch {epoch + 1}/{tc.epochs}", total=n_batches, leave=False,
               unit="batch", disable=not distributed.is_main())
    clock = [time.perf_counter()]  # the start, then each read of the losses (the GPU has caught up there)
    for b, images in enumerate(bar):  # (3n, 3, S, S) uint8 on the device
        r = rows[b]
        scale = distributed.loss_scale(len(r), batches.global_size(b))
        values = run.step(images, flips[r.start:r.stop].t().reshape(-1), attrs[r.start:r.stop].repeat(3), scale)
        losses.add(b, values, len(r))
        if losses.due(b):
            losses.check(b + 1)
            clock.append(time.perf_counter())
            bar.set_postfix(loss=f"{losses.means()['loss']:.4f}")
    losses.check(n_batches)
    clock.append(time.perf_counter())
    _log_rate(epoch, n_batches, sum(3 * len(r) for r in rows), clock, tc.check_every)
    return {"epoch": epoch + 1, **losses.means()}


def _log_rate(epoch: int, n_batches: int, images: int, clock: list[float], every: int) -> None:
    """This rank's training images/s over the epoch and, apart from warm-up, after the first read."""
    seconds = clock[-1] - clock[0]
    steady = ""
    if len(clock) > 2 and n_batches > every:
        steady = f", {images * (n_batches - every) / n_batches / (clock[-1] - clock[1]):.0f} after the first {every}"
    log.info("epoch %d: %d batches, %d images in %.1f s: %.0f images/s%s", epoch + 1, n_batches, images, seconds,
             images / max(seconds, 1e-9), steady)
