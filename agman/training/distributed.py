"""Training one cell on several processes (PyTorch DDP), and the helpers the loop needs for it.

``torchrun --nproc_per_node N -m stages.cell <cell>`` starts N processes with ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` set; ``setup`` then joins them in a process group (NCCL on CUDA,
each process on GPU ``LOCAL_RANK``; gloo on CPU). Without ``WORLD_SIZE > 1`` nothing here does
anything: ``world_size()`` is 1, ``rank()`` 0, the reductions return their input unchanged, so
the single-process loop runs exactly as it would without this module.

The scheme (docs/multi-gpu.md):

* Data. ``train.batch_size`` stays the global batch. Every epoch's triplet file is cut into the
  same global batches as in one process (rows ``[k B, (k+1) B)``), and rank ``r`` takes the
  ``r``-th contiguous part of each (``shard``): the ranks' micro-batches together are exactly
  the single-process batches, in order, without overlap. A short last batch is split as evenly as
  possible; if it has fewer triplets than there are ranks it is dropped (logged).
* Gradients. Every loss term is a mean over the micro-batch, so with equal shards DDP's gradient
  average is the gradient of the global batch's mean. Unequal shards (the short last batch) are
  weighted by ``N n_r / b`` (``loss_scale``), which makes the average exact again. (CSN's
  regulariser, the square root of a batch mean, is the one term computed per rank.)
* BatchNorm. With ``train.sync_bn`` (default) BatchNorm normalises with the statistics of the
  global batch (``sync_batchnorm``), so the forward pass equals the single-process one up to
  float summation order; without it each rank uses its own micro-batch's statistics.
* Random augmentation (the horizontal flip) is drawn per epoch from the run's seed for every
  triplet (``agman.data.images.draw_flips``), so each rank mirrors exactly the images that one
  process would.
"""

from __future__ import annotations

import datetime
import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

log = logging.getLogger(__name__)

#: How long a collective may wait. Rank 0 validates and writes checkpoints while the other ranks
#: wait at a barrier; a full validation of a real dataset takes minutes, so the default
#: (10 minutes for NCCL) would be too tight.
TIMEOUT = datetime.timedelta(hours=2)


def launched() -> bool:
    """Whether this process was started as one of several (``WORLD_SIZE > 1``, set by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    """Whether a process group of more than one process is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of training processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """Whether this process validates, writes checkpoints, curves and MLflow logs (rank 0)."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched as one of several; return this rank's device.

    ``device`` is what ``train.device`` resolved to. On CUDA each rank takes GPU ``LOCAL_RANK``
    and the backend is NCCL; on CPU the backend is gloo. Calling it again is a no-op (the group
    stays up until ``teardown``). With one process it returns ``device`` unchanged.
    """
    if not launched():
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices are visible; "
                               "start at most one process per GPU")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_available() or (backend == "gloo" and not dist.is_gloo_available()):
            raise RuntimeError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but torch.distributed has no {backend} backend")
        dist.init_process_group(backend, timeout=TIMEOUT)
        log.info("process group up: rank %d of %d, backend %s, device %s", dist.get_rank(), dist.get_world_size(),
                 backend, device)
    return device


def teardown() -> None:
    """Leave the process group (if one is up)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (no-op with one process)."""
    if is_distributed():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of ``values``, elementwise; ``values`` itself with one process."""
    if not is_distributed():
        return values
    out = values.to(_comm_device())
    dist.all_reduce(out)
    return out


def gather_object(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` as a list on rank 0 (None on the others); ``[obj]`` with one process."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank; ``obj`` itself with one process."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_batch_size(batch_size: int) -> None:
    """The global batch must split evenly over the ranks (so that DDP's average is the mean)."""
    n = world_size()
    if batch_size % n:
        raise ValueError(f"train.batch_size {batch_size} is not divisible by the {n} processes; "
                         f"use a multiple of {n} or another process count")


def shard(start: int, stop: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous part of rows ``[start, stop)`` split into ``world`` parts.

    Parts differ in size by at most one, earlier ranks taking the extra rows; the parts are
    disjoint, in order, and together cover the range.
    """
    base, extra = divmod(stop - start, world)
    lo = start + rank * base + min(rank, extra)
    return range(lo, lo + base + (rank < extra))


class ShardedBatches:
    """This rank's rows of each global batch of ``batch_size`` consecutive rows of ``n`` (see
    ``shard``): ``batches[k]`` is a range. With one process they are exactly the batches of
    ``DataLoader(batch_size=batch_size, shuffle=False)``. A short last batch with fewer rows than
    ranks is dropped, since some rank would get nothing to run."""

    def __init__(self, n: int, batch_size: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.starts = [s for s in range(0, n, batch_size) if min(s + batch_size, n) - s >= world]

    def global_size(self, batch: int) -> int:
        """Triplets in global batch ``batch`` (all ranks together)."""
        return min(self.starts[batch] + self.batch_size, self.n) - self.starts[batch]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, batch: int) -> range:
        s = self.starts[batch]
        return shard(s, min(s + self.batch_size, self.n), self.rank, self.world)


def loss_scale(local: int, total: int) -> float:
    """Factor on this rank's loss so that DDP's gradient average over ranks equals the gradient of
    the mean over the global batch: ``N n_r / b`` (exactly 1 with equal shards)."""
    return world_size() * local / total


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel (gradients averaged over ranks during backward), or
    ``module`` itself with one process or when it has nothing to train."""
    if not is_distributed() or not any(p.requires_grad for p in module.parameters()):
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks that passes gradients back: the gradient of every rank's input is the sum of
    the gradients reaching every rank's output (each rank's loss depends on all inputs)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(_BatchNorm):
    """BatchNorm over the batch of every rank, for CPU processes (``torch.nn.SyncBatchNorm`` runs
    on GPUs only). Per-channel sums, sums of squares and counts are all-reduced in float64, with
    the gradient carried back to every rank, so the normalisation and the running statistics are
    those of the global batch."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        x64 = x.double()
        local = torch.cat([x64.sum(dims), (x64 * x64).sum(dims), x64.new_tensor([x.numel() / x.shape[1]])])
        total = _AllReduceSum.apply(local)
        c = x.shape[1]
        count = total[2 * c]
        mean = total[:c] / count
        var = total[c:2 * c] / count - mean * mean  # biased, as BatchNorm normalises with
        y = (x64 - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        y = y.to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        return y


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``model`` normalising with the global batch's statistics:
    ``torch.nn.SyncBatchNorm`` on CUDA, ``CpuSyncBatchNorm`` on CPU. Parameters and buffers are
    the same tensors, and the state_dict keys unchanged, so checkpoints load into plain models."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def convert(module: nn.Module) -> nn.Module:
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, (CpuSyncBatchNorm, nn.SyncBatchNorm)):
            out = CpuSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                   module.track_running_stats)
            if module.affine:
                out.weight, out.bias = module.weight, module.bias
            if module.track_running_stats:
                out.running_mean, out.running_var = module.running_mean, module.running_var
                out.num_batches_tracked = module.num_batches_tracked
            out.train(module.training)
        for name, child in module.named_children():
            out.add_module(name, convert(child))
        return out

    return convert(model)


# GPUs for parallel jobs --------------------------------------------------------------------------

#: Environment variable: the GPU slots parallel jobs share, e.g. ``0,1,2,3`` (one job per GPU) or
#: ``0,0,0,0,1,1,1,1`` (four jobs on each of two GPUs). Each train stage takes ``train.nproc``
#: slots on distinct GPUs that no other job holds (``claim_gpus``).
GPU_POOL_ENV = "AGMAN_GPUS"


def gpu_slots(pool: str) -> list[tuple[str, int]]:
    """The slots of a pool: (GPU, how many times that GPU was named before), in pool order."""
    gpus = [g.strip() for g in pool.split(",") if g.strip()]
    return [(g, gpus[:i].count(g)) for i, g in enumerate(gpus)]


def claim_gpus(n: int, pool: str | None = None, lock_dir: str | Path | None = None,
               poll_s: float = 10.0) -> list[str]:
    """Take ``n`` slots of ``pool`` (default: ``$AGMAN_GPUS``, see GPU_POOL_ENV) on distinct GPUs
    that no other process holds, and set ``CUDA_VISIBLE_DEVICES`` to their GPUs, so that jobs run
    in parallel each get GPUs of their own (or a share of one). A slot is held by an exclusive
    ``flock`` on a file in ``lock_dir`` (default: ``$TMPDIR/agman-gpus``), which the kernel
    releases when this process ends, however it ends; while fewer than ``n`` are free it waits.
    Returns the GPUs taken (``[]`` when no pool is set: nothing is claimed and the environment is
    left alone).
    """
    pool = os.environ.get(GPU_POOL_ENV, "") if pool is None else pool
    slots = gpu_slots(pool)
    if not slots:
        return []
    distinct = len({g for g, _ in slots})
    if n > distinct:
        raise ValueError(f"{GPU_POOL_ENV}={pool!r} has {distinct} distinct GPUs but the job needs {n}")
    folder = Path(lock_dir or Path(tempfile.gettempdir()) / "agman-gpus")
    folder.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        held: dict[str, int] = {}  # GPU -> the fd of its locked slot
        for gpu, k in slots:
            if gpu in held:
                continue
            fd = os.open(folder / f"gpu-{gpu}-{k}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held[gpu] = fd
            if len(held) == n:
                break
        if len(held) == n:
            taken = list(held)
            _HELD_LOCKS.extend(held.values())  # kept open (so locked) until the process ends
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(taken)
            log.info("GPUs %s of %s=%s taken (CUDA_VISIBLE_DEVICES)", ",".join(taken), GPU_POOL_ENV, pool)
            return taken
        for fd in held.values():
            os.close(fd)  # closing releases the lock: no half-claimed set blocks another job
        if not waited:
            log.info("waiting for %d free GPU slots of %s=%s", n, GPU_POOL_ENV, pool)
            waited = True
        time.sleep(poll_s)


_HELD_LOCKS: list[int] = []


def release_gpus() -> None:
    """Give back the GPUs ``claim_gpus`` took (they are given back anyway when the process ends)."""
    while _HELD_LOCKS:
        os.close(_HELD_LOCKS.pop())
