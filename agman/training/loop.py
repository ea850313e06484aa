"""The training loop (Sec. IV-A): Adam + StepLR, triplet + classification loss, per-epoch
validation (MAP, or triplet prediction accuracy on Zappos50k), best checkpoint by that score,
atomic checkpoints and resume.

One file of triplets per epoch comes from the ``triplets`` stage. Each batch stacks anchors,
positives and negatives into one forward pass of 3B images.

The same loop runs one process or several (``torchrun``; ``agman.training.distributed`` has the
scheme): each rank trains on its part of every global batch inside DistributedDataParallel, and
rank 0 alone validates and writes checkpoints, curves and MLflow logs while the others wait.
"""

from __future__ import annotations

import csv
import io
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from agman import codegraph
from agman.config import Config, fingerprint, to_dict
from agman.data.images import TripletDataset, triplet_batch
from agman.device import autocast_context, pick_device, resolve_memory_format
from agman.data.prepared import PreparedData
from agman.evaluation import evaluate, flat_metrics
from agman.io import write_file_atomically
from agman.losses import attribute_classification_loss, build_weighting, triplet_ranking_loss
from agman.models import build_model, model_params, trains_classification
from agman.training import distributed
from agman.training.checkpoint import (BEST_CHECKPOINT, LAST_CHECKPOINT, load_checkpoint, restore_rng_states,
                                       rng_states, save_checkpoint, seed_everything)

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


def run_fingerprint(cfg: Config, data: PreparedData, triplet_dir: Path) -> str:
    """What ``last.pt`` must match to be resumed or reused: the config, the data (table, triplet
    lists, every epoch's triplet file), the training code, and of the ``model`` block only the keys
    the model reads (``model_params``: a baseline's run stays valid when ``model.aga.*`` changes).
    How many processes train
    (``train.nproc``, ``train.sync_bn``) is left out: the global batches are the same, so an
    interrupted run may resume on another number of GPUs, or on one."""
    train = {k: v for k, v in to_dict(cfg.train).items() if k not in ("nproc", "sync_bn")}
    return fingerprint(cfg.data.root, cfg.data.image_size, cfg.triplets, model_params(cfg.model), cfg.loss, train, cfg.eval,
                       data_digest(data, triplet_dir), code_digest())


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
    world = distributed.world_size()
    distributed.check_batch_size(tc.batch_size)
    seed_everything(tc.seed)
    n_attr = len(data.attributes)
    model = build_model(cfg.model, n_attr)
    if world > 1 and tc.sync_bn:
        model = distributed.sync_batchnorm(model, device)
    model = model.to(device)
    weighting = build_weighting(cfg.loss, with_cls=trains_classification(cfg.model)).to(device)
    distributed.seed_rank(tc.seed)  # ranks > 0: flips of their own (the model is the same everywhere)
    log.info("loss: triplet margin %.3g, weighting %s over %s; device %s, autocast %s, memory format %s%s",
             cfg.loss.margin, type(weighting).__name__, "+".join(weighting.weights()), device,
             tc.amp_dtype if device.type == "cuda" else "off", tc.memory_format,
             f"; {world} processes, {tc.batch_size // world} triplets each per batch, BatchNorm "
             f"{'synced' if tc.sync_bn else 'per process'}" if world > 1 else "")
    optimizer = torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=tc.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=tc.lr_step, gamma=tc.lr_gamma)
    on_cuda = device.type == "cuda"
    memory_format = resolve_memory_format(tc.memory_format, device)
    model = model.to(memory_format=memory_format)

    fp = run_fingerprint(cfg, data, paths.triplet_dir)
    state = TrainState()
    last = paths.last
    if last.is_file():
        ckpt = load_checkpoint(last)
        start = start_from(ckpt, fp, tc.epochs, paths.best.is_file())
        if start == "reuse":
            log.info("%s is a finished run of this config, data and code; reusing it", last)
            state = TrainState(**ckpt["state"])
            if distributed.is_main():  # DVC deletes a stage's outputs before running it: write them again
                _write_curves(paths.curves, state.history)
            return state
        if start == "resume":
            model.load_state_dict(ckpt["model"])
            weighting.load_state_dict(ckpt["weighting"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            state = TrainState(**ckpt["state"])
            per_rank = ckpt.get("rng_ranks") or []
            if len(per_rank) == world:  # each rank continues its own random stream
                restore_rng_states(per_rank[distributed.rank()])
            else:  # one process, or another process count than the interrupted run's
                restore_rng_states(ckpt["rng"])
                distributed.seed_rank(tc.seed, state.epoch)
            log.info("resuming from %s after epoch %d", last, state.epoch)
        else:
            log.info("%s belongs to another run (or its best.pt is gone); training from scratch", last)

    # DDP after loading: the wrappers train, ``model`` and ``weighting`` are what is saved.
    forward = distributed.wrap(model, device)
    forward = torch.compile(forward) if (on_cuda and tc.compile) else forward
    weigh = distributed.wrap(weighting, device)

    main = distributed.is_main()  # rank 0 validates, saves and logs; the others wait at a barrier
    tracker = tracker_factory(state.run_id) if (tracker_factory and main) else None
    if tracker is not None:
        state.run_id = tracker.run_id
        write_file_atomically(paths.run_json, json.dumps({"mlflow_run_id": tracker.run_id}))
    status = "FAILED"
    try:
        epochs = tqdm(range(state.epoch, tc.epochs), desc="epochs", unit="epoch", initial=state.epoch,
                      total=tc.epochs, disable=not main)
        for epoch in epochs:
            record = _train_epoch(cfg, forward, weigh, optimizer, data, paths, epoch, device, memory_format)
            record.update({f"weight_{k}": v for k, v in weighting.weights().items()})
            record["lr"] = optimizer.param_groups[0]["lr"]
            scheduler.step()
            state.epoch = epoch + 1
            if main:
                val = evaluate(model, data, "valid", cfg, device)  # autocast on the forward only
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
                        "model": model.state_dict(), "config": to_dict(cfg), "attributes": data.attributes,
                        "epoch": epoch + 1, "val": val,
                    })
            # Every rank's random stream, for resuming each; the other ranks wait here (and at the
            # barrier below) while rank 0 validates and saves.
            rngs = distributed.gather_object(rng_states())
            if main:
                save_checkpoint(last, {
                    "fingerprint": fp, "model": model.state_dict(), "weighting": weighting.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rngs[0],
                    **({"rng_ranks": rngs} if len(rngs) > 1 else {}), "state": state.__dict__,
                })
                _write_curves(paths.curves, state.history)
            distributed.barrier()
        state = distributed.broadcast_object(state)  # every rank returns rank 0's history
        if tracker is not None:
            tracker.log_metrics({"best_val_score": state.best_score, "best_epoch": state.best_epoch})
            tracker.log_artifact(paths.curves)
        status = "FINISHED"
    finally:
        if tracker is not None:
            tracker.end(status)
    return state


def _train_epoch(cfg: Config, model, weighting, optimizer, data: PreparedData, paths: TrainPaths, epoch: int,
                 device: torch.device, memory_format) -> dict:
    """One epoch over this rank's part of each global batch; the losses returned are means over
    every rank's triplets."""
    tc = cfg.train
    triplet_file = paths.triplet_dir / f"epoch_{epoch:03d}.npy"
    if not triplet_file.is_file():
        raise FileNotFoundError(f"{triplet_file}: no triplets for epoch {epoch + 1} (train.epochs = {tc.epochs}); "
                                "rerun the triplets stage")
    triplets = np.load(triplet_file)
    batches = distributed.ShardedBatches(len(triplets), tc.batch_size, distributed.rank(), distributed.world_size())
    dropped = len(triplets) - sum(batches.global_size(b) for b in range(len(batches)))
    if dropped:
        log.warning("epoch %d: the last %d triplets are fewer than the %d processes and are left out", epoch + 1,
                    dropped, distributed.world_size())
    loader = DataLoader(TripletDataset(data.cache, data.entries, triplets), batch_sampler=batches,
                        num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda")
    n_batches = len(loader) if not tc.max_batches else min(len(loader), tc.max_batches)
    model.train()
    sums = {"loss": 0.0, "triplet": 0.0, "cls": 0.0, "penalty": 0.0}
    seen = 0
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{tc.epochs}", total=n_batches, leave=False, unit="batch",
               disable=not distributed.is_main())
    for batch, (anchor, positive, negative, attr, flips) in enumerate(bar):
        if batch >= n_batches:
            break
        images = triplet_batch(anchor, positive, negative, flips, device)  # (3B, 3, H, W) float32
        images = images.contiguous(memory_format=memory_format)
        attrs = attr.repeat(3).to(device, non_blocking=True)  # (3B,)
        with autocast_context(device, tc.amp_dtype):
            out = model(images, attrs, with_logits=trains_classification(cfg.model))
        emb_a, emb_p, emb_n = out.embedding.float().chunk(3)  # 3 x (B, c')
        losses = {"triplet": triplet_ranking_loss(emb_a, emb_p, emb_n, cfg.loss.margin)}
        if out.logits is not None:
            losses["cls"] = attribute_classification_loss(out.logits.float(), attrs)
        loss = weighting(losses)
        if out.penalty is not None:  # a model's own regulariser (CSN's norms), outside the weighting
            losses["penalty"] = out.penalty.float()
            loss = loss + losses["penalty"]
        # The batch's values over all ranks: sums weighted by each rank's triplets (as they are
        # with one process), so every rank sees the same numbers and stops on the same batch.
        n = len(attr)
        values = dict(loss=loss.item(), **{k: v.item() for k, v in losses.items()})
        totals = distributed.all_reduce_sum([v * n for v in values.values()] + [n])
        if not math.isfinite(totals[0]):
            raise FloatingPointError(f"non-finite loss ({totals[0] / totals[-1]}) at epoch {epoch + 1}, batch "
                                     f"{batch + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
        scale = distributed.loss_scale(n, batches.global_size(batch))
        optimizer.zero_grad(set_to_none=True)
        (loss if scale == 1 else loss * scale).backward()  # DDP averages the gradients over ranks
        optimizer.step()
        seen += int(totals[-1])
        for k, total in zip(values, totals):
            sums[k] += total
        bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}")
    return {"epoch": epoch + 1, **{k: v / max(seen, 1) for k, v in sums.items()}}
