"""Training one cell on two gloo processes (DDP on CPU) against one process on the same global
batches; resuming a two-process run; the sharding and GPU-claiming helpers.

Tolerance. With BatchNorm synced (``train.sync_bn``), both runs compute the same function of the
same triplets, mirrored alike (the flips are drawn per epoch from the seed). Only float
summation order differs: convolutions over 12 images instead of 24, BatchNorm's sums (float64
across ranks, float32 in one process), DDP's gradient all-reduce. The first batch's losses agree
to ~1e-7; Adam then amplifies the ~1e-6 gradient differences (it divides each gradient by its own
RMS, so a parameter whose gradient is near zero moves by up to lr either way), ~1e-5 after one
step and ~2e-3 after two. Two single-process runs that differ only in their thread count differ
the same way (1e-7, 4e-6, 4e-4; weights 0.4% of the update apart). Hence per-batch losses within
1e-6, 1e-4 and 1e-2 relative, and weights within 3% of the update (measured: 0.8%). BatchNorm per
process (``sync_bn: false``) misses by 5% at the first batch and 37% of the update: the test
tells the two apart.
"""

from __future__ import annotations

import dataclasses
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist

from agman.config import Config, TrainConfig
from agman.config.load import ConfigError, check_cells
from agman.data.triplets import sample_triplets
from agman.models import build_model
from agman.pipeline import cell
from agman.training import distributed
from agman.training import loop as loop_module
from agman.training.checkpoint import load_checkpoint, seed_everything
from agman.training.loop import TrainPaths, train
from tests.helpers import ci_config

gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                          reason="torch.distributed with the gloo backend is not available")

BATCH, LR = 8, 1e-3
BATCH_RTOL = (1e-6, 1e-4, 1e-2)  # per-batch losses: before any update, after one, after two (docstring)
UPDATE_RTOL = 3e-2  # |w_ddp - w_one| / |w_one - w_init| over all weights after the three steps


def tiny_config(epochs: int, per_epoch: int, sync_bn: bool = True) -> Config:
    return ci_config(triplets={"per_epoch": per_epoch}, model={"embed_dim": 16},
                     train={"epochs": epochs, "batch_size": BATCH, "lr": LR, "lr_step": 1, "sync_bn": sync_bn},
                     eval={"batch_size": 32})


COMPARE = tiny_config(epochs=1, per_epoch=21)  # batches of 8, 8, 5 triplets: shards 4/4, 4/4, 3/2
RESUME = tiny_config(epochs=2, per_epoch=8)  # one batch per epoch


def make_paths(folder, data, cfg: Config) -> TrainPaths:
    triplet_dir = folder / "triplets"
    triplet_dir.mkdir(parents=True)
    for epoch in range(cfg.train.epochs):
        np.save(triplet_dir / f"epoch_{epoch:03d}.npy",
                sample_triplets(data.table, data.attributes, cfg.triplets.per_epoch, seed=0, epoch=epoch))
    return TrainPaths(triplet_dir=triplet_dir, out_dir=folder / "run", curves=folder / "curves.csv")


class RecordingLog(loop_module.LossLog):
    """The loop's loss log, keeping each epoch's per-batch global means [loss, terms..., triplets]."""

    epochs: list = []

    def check(self, upto: int) -> None:
        super().check(upto)
        if upto == len(self.per_batch):
            rows = self.per_batch
            RecordingLog.epochs.append([[*(rows[b, :-1] / rows[b, -1]).tolist(), float(rows[b, -1])]
                                        for b in range(len(rows))])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, folder, data) -> None:
    """One of ``world`` processes, set up as torchrun would; results go to files in ``folder``.
    Both tests' two-process runs share one start-up of the processes (the slow part)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank), AGMAN_NO_MLFLOW="1")
    torch.set_num_threads(1)
    try:
        # compare: every batch's global losses kept
        real_log = loop_module.LossLog
        loop_module.LossLog = RecordingLog
        cfg = COMPARE
        state = train(cfg, data, shared_paths(rank, folder / "compare", data, cfg))
        torch.save({"batches": RecordingLog.epochs[-1], "history": state.history},
                   folder / "compare" / f"rank{rank}.pt")
        loop_module.LossLog = real_log

        # resume: a straight run, and one interrupted at the start of epoch 2, resumed
        cfg = RESUME
        train(cfg, data, shared_paths(rank, folder / "straight", data, cfg))
        resumed = shared_paths(rank, folder / "resumed", data, cfg)
        real_epoch, calls = loop_module._train_epoch, {"n": 0}

        def interrupt_epoch_2(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:  # on every rank, before any collective of epoch 2
                raise KeyboardInterrupt("simulated interruption")
            return real_epoch(*args, **kwargs)

        loop_module._train_epoch = interrupt_epoch_2
        with pytest.raises(KeyboardInterrupt):
            train(cfg, data, resumed)
        trained = []  # the epochs the resumed call trains: 2 only, epoch 1 comes from last.pt
        loop_module._train_epoch = lambda *args: trained.append(args[4] + 1) or real_epoch(*args)
        state = train(cfg, data, resumed)
        loop_module._train_epoch = real_epoch
        torch.save({"epoch": state.epoch, "trained": trained}, folder / f"resumed{rank}.pt")
    finally:
        distributed.teardown()


def shared_paths(rank: int, folder, data, cfg: Config) -> TrainPaths:
    """Rank 0 writes the triplet files while the others wait at a barrier."""
    distributed.setup(torch.device("cpu"))
    if rank == 0:
        make_paths(folder, data, cfg)
    distributed.barrier()
    return TrainPaths(triplet_dir=folder / "triplets", out_dir=folder / "run", curves=folder / "curves.csv")


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory, demo_data):
    """The folder where two gloo processes left both tests' runs."""
    folder = tmp_path_factory.mktemp("ddp")
    # fork skips re-importing torch and torchvision in each process (~10 s of CPU each); a process
    # that has initialised CUDA cannot fork, so then spawn.
    method = "spawn" if torch.cuda.is_initialized() else "fork"
    torch.multiprocessing.start_processes(_worker, args=(2, free_port(), folder, demo_data), nprocs=2, join=True,
                                          start_method=method)
    return folder


@gloo
@pytest.mark.slow
def test_two_processes_match_one_on_the_same_global_batches(ddp_runs, tmp_path, demo_data, monkeypatch):
    cfg = COMPARE

    monkeypatch.setattr(loop_module, "LossLog", RecordingLog)
    single = train(cfg, demo_data, make_paths(tmp_path / "single", demo_data, cfg))
    single_batches = RecordingLog.epochs[-1]

    ddp = torch.load(ddp_runs / "compare" / "rank0.pt", weights_only=False)
    other = torch.load(ddp_runs / "compare" / "rank1.pt", weights_only=False)
    # Each batch: loss, triplet, cls (global means), then the triplets the ranks ran together.
    assert [b[-1] for b in ddp["batches"]] == [b[-1] for b in single_batches] == [8, 8, 5]
    assert other["batches"] == ddp["batches"]  # every rank has the same global means
    for batch, rtol in enumerate(BATCH_RTOL):
        np.testing.assert_allclose(ddp["batches"][batch], single_batches[batch], rtol=rtol, err_msg=f"batch {batch}")
    assert other["history"] == ddp["history"]  # rank 0's history, broadcast
    np.testing.assert_allclose(ddp["history"][0]["loss"], single.history[0]["loss"], rtol=BATCH_RTOL[-1])
    assert ddp["history"][0].keys() == single.history[0].keys()

    seed_everything(cfg.train.seed)
    start = build_model(cfg.model, len(demo_data.attributes)).state_dict()
    a = load_checkpoint(ddp_runs / "compare" / "run" / "last.pt")
    b = load_checkpoint(tmp_path / "single" / "run" / "last.pt")
    assert a["model"].keys() == b["model"].keys()  # SyncBatchNorm leaves plain BatchNorm keys
    keys = [k for k in b["model"] if b["model"][k].is_floating_point()]
    moved = torch.cat([(b["model"][k] - start[k]).flatten() for k in keys])
    apart = torch.cat([(a["model"][k] - b["model"][k]).flatten() for k in keys])
    assert float(apart.norm() / moved.norm()) < UPDATE_RTOL
    torch.testing.assert_close(a["weighting"]["log_vars"], b["weighting"]["log_vars"], rtol=1e-4, atol=1e-7)
    assert (ddp_runs / "compare" / "run" / "best.pt").is_file() and (ddp_runs / "compare" / "curves.csv").is_file()


@gloo
@pytest.mark.slow
def test_two_process_run_resumes_to_the_same_result(ddp_runs):
    for r in range(2):
        resumed = torch.load(ddp_runs / f"resumed{r}.pt")
        assert resumed["epoch"] == 2 and resumed["trained"] == [2], resumed
    a = load_checkpoint(ddp_runs / "straight" / "run" / "last.pt")
    b = load_checkpoint(ddp_runs / "resumed" / "run" / "last.pt")
    assert [r["loss"] for r in a["state"]["history"]] == [r["loss"] for r in b["state"]["history"]]
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0, msg=key)
    assert len(a["rng_ranks"]) == 2  # every rank's random state, to resume each


def test_shards_are_contiguous_disjoint_and_cover_each_batch():
    for n, batch, world in [(13, 8, 2), (16, 8, 4), (17, 8, 4), (10, 4, 1)]:
        per_rank = [distributed.ShardedBatches(n, batch, r, world) for r in range(world)]
        union = [sum((list(p[k]) for p in per_rank), []) for k in range(len(per_rank[0]))]
        expected = [list(range(s, min(s + batch, n))) for s in range(0, n, batch)]
        if n % batch and n % batch < world:
            expected = expected[:-1]  # a last batch smaller than the process count is left out
        assert union == expected
        assert all(max(map(len, b)) - min(map(len, b)) <= 1 for b in zip(*[[p[k] for k in range(len(p))]
                                                                          for p in per_rank], strict=True))
    assert list(distributed.shard(0, 5, 0, 2)) == [0, 1, 2] and list(distributed.shard(0, 5, 1, 2)) == [3, 4]


def test_single_process_batches_are_the_dataloaders():
    from torch.utils.data import BatchSampler, SequentialSampler

    batches = distributed.ShardedBatches(21, 8)
    assert [list(batches[k]) for k in range(len(batches))] == list(BatchSampler(SequentialSampler(range(21)), 8, False))


def test_batch_size_must_split_over_the_processes(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(ValueError, match="batch_size 16 is not divisible by the 3 processes"):
        distributed.check_batch_size(16)
    with pytest.raises(ConfigError, match="train.nproc"):
        check_cells(dataclasses.replace(Config(), train=TrainConfig(batch_size=16, nproc=3)))


def test_claim_gpus_takes_free_slots_on_distinct_gpus_and_sets_visible_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    try:
        assert distributed.claim_gpus(1, pool="", lock_dir=tmp_path) == []  # no pool: nothing changes
        assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
        assert distributed.claim_gpus(1, pool="0,1,2", lock_dir=tmp_path) == ["0"]
        assert distributed.claim_gpus(2, pool="0,1,2", lock_dir=tmp_path) == ["1", "2"]  # 0 is held
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "1,2"
        with pytest.raises(ValueError, match="has 3 distinct GPUs but the job needs 4"):
            distributed.claim_gpus(4, pool="0,1,2", lock_dir=tmp_path)
    finally:
        distributed.release_gpus()
    assert distributed.claim_gpus(3, pool="0,1,2", lock_dir=tmp_path) == ["0", "1", "2"]  # released
    distributed.release_gpus()
    # A GPU named twice is two slots: two jobs share it, a third waits.
    pool = "0,0,1,1"
    assert distributed.gpu_slots(pool) == [("0", 0), ("0", 1), ("1", 0), ("1", 1)]
    try:
        taken = [distributed.claim_gpus(1, pool=pool, lock_dir=tmp_path) for _ in range(4)]
        assert taken == [["0"], ["0"], ["1"], ["1"]]
        with pytest.raises(ValueError, match="has 2 distinct GPUs but the job needs 3"):
            distributed.claim_gpus(3, pool=pool, lock_dir=tmp_path)
    finally:
        distributed.release_gpus()
    try:
        assert distributed.claim_gpus(2, pool=pool, lock_dir=tmp_path) == ["0", "1"]  # two ranks, two GPUs
    finally:
        distributed.release_gpus()


def test_a_full_pool_makes_the_next_job_wait(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    sleeps = []

    def release_after_first_wait(seconds):
        sleeps.append(seconds)
        distributed.release_gpus()  # the other job ends

    monkeypatch.setattr(distributed.time, "sleep", release_after_first_wait)
    try:
        assert distributed.claim_gpus(1, pool="0", lock_dir=tmp_path) == ["0"]
        assert distributed.claim_gpus(1, pool="0", lock_dir=tmp_path, poll_s=7) == ["0"]
        assert sleeps == [7]
    finally:
        distributed.release_gpus()


def test_train_stage_with_nproc_relaunches_itself_under_torchrun(monkeypatch):
    import subprocess
    import sys
    from types import SimpleNamespace

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv(distributed.GPU_POOL_ENV, raising=False)
    calls, rc = [], {"code": 0}
    monkeypatch.setattr(subprocess, "run",
                        lambda cmd, check: calls.append(cmd) or SimpleNamespace(returncode=rc["code"]))
    cfg = Config(train=TrainConfig(nproc=2))
    cell.run_train(cfg, "fashionai-agman")
    assert calls == [[sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                      "-m", "stages.cell", "fashionai-agman"]]
    rc["code"] = 3
    with pytest.raises(SystemExit) as exit_info:
        cell.run_train(cfg, "fashionai-agman")
    assert exit_info.value.code == 3  # a failed rank fails the stage
