"""Total training images/s of K jobs sharing one GPU, for K = 1, 2, 4, 8: how many cells to run
per GPU (``AGMAN_GPUS`` naming a GPU K times, docs/multi-gpu.md).

Each job is a process doing what a cell's training does per batch: a batch of 16 triplets of
random cache entries read from an array cache by its own ``data.feed: host`` (DataLoader workers,
pinned memory), flips and attribute types on the device, the AG-MAN step (ResNet-50, 224 px,
bf16, channels_last) replayed from a CUDA graph, a read of the losses every ``--block`` batches
(the loop's ``train.check_every``, 50). The
jobs start together, warm up (graph capture), wait until all are ready, then train for
``--seconds``; each counts its images in that window. The cache is written once, before the jobs,
with random pixels (the rate does not depend on them).

Without MPS the GPU time-slices between the jobs' contexts, so their kernels never overlap; ``--mps``
starts NVIDIA's Multi-Process Service (``nvidia-cuda-mps-control -d``, its pipe and log folders in a
scratch folder) for the sweep, under which the jobs' small kernels may run side by side, and stops
it afterwards. Where the control binary is missing or the daemon does not start, the result says so
and nothing is timed.

    python benchmarks/gpu_jobs.py --jobs 1 2 4 8 --seconds 8           # on the GPU machine
    python benchmarks/gpu_jobs.py --jobs 1 2 4 --seconds 8 --mps       # the same under MPS
    python benchmarks/gpu_jobs.py --device cpu --jobs 1 2 --seconds 1 --size 32 --arch resnet18 --images 64 \\
        --batch 2 --block 2 --workers 1  # toy
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np


def write_array_cache(folder: Path, images: int, size: int) -> Path:
    """An array-format image cache (agman.data.cache's layout) of random pixels."""
    folder.mkdir(parents=True)
    pixels = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(images, size, size, 3))
    rng = np.random.default_rng(0)
    for start in range(0, images, 1024):
        pixels[start:start + 1024] = rng.integers(0, 256, pixels[start:start + 1024].shape, dtype=np.uint8)
    pixels.flush()
    (folder / "cache.json").write_text(json.dumps({"format": "array", "size": size, "images": images,
                                                   "jpeg_quality": 90, "sha256": "random pixels"}))
    return folder


def job(args) -> None:
    """One job (run in its own process): warm up, report ready, wait for the go, train, report."""
    import torch
    from gpu_train_step import agman_step

    from agman.data.cache import ImageCache
    from agman.data.feed import HostFeed

    device = torch.device(args.device)
    setting = "graphed_bf16_cl" if device.type == "cuda" else "eager_bf16_cl"
    step, _ = agman_step(setting, args.batch, device, args.arch)
    cache = ImageCache(args.cache)
    feed = HostFeed(cache, device, args.workers)
    rng = np.random.default_rng(args.index)
    n = 3 * args.batch
    flips = torch.from_numpy(rng.random(n) < 0.5).to(device)
    attrs = torch.from_numpy(rng.integers(0, 8, args.batch)).repeat(3).to(device)

    def batches(count):
        return [rng.integers(0, len(cache), n) for _ in range(count)]

    def train_block() -> None:
        for images in feed(batches(args.block)):
            values = step(images, flips, attrs)
        float(values[0])  # the loop's read of the losses: a synchronisation

    train_block()  # warm-up: the workers, the graph's capture
    Path(f"{args.sync}/ready-{args.index}").touch()
    while not Path(f"{args.sync}/go").exists():
        time.sleep(0.05)
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        train_block()
        images += n * args.block
    seconds = time.perf_counter() - start
    print(json.dumps({"job": args.index, "images": images, "seconds": seconds, "images_per_s": images / seconds}))


@contextlib.contextmanager
def mps_daemon(folder: Path):
    """NVIDIA MPS running for the block; yields the environment its clients need, or raises RuntimeError."""
    control = shutil.which("nvidia-cuda-mps-control")
    if control is None:
        raise RuntimeError("nvidia-cuda-mps-control not found on PATH")
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(folder / "pipe"), "CUDA_MPS_LOG_DIRECTORY": str(folder / "log")}
    for name in ("pipe", "log"):
        (folder / name).mkdir(parents=True)
    started = subprocess.run([control, "-d"], env=env, capture_output=True, text=True)
    if started.returncode:
        raise RuntimeError(f"nvidia-cuda-mps-control -d exited {started.returncode}: {started.stderr.strip()}")
    try:
        yield env
    finally:
        subprocess.run([control], input="quit\n", env=env, capture_output=True, text=True)


def sweep(k: int, args, cache: Path, env: dict) -> dict:
    """K jobs at once; their images/s in the common window and in total."""
    with tempfile.TemporaryDirectory() as sync:
        cmd = [sys.executable, __file__, "job", "--cache", str(cache), "--sync", sync, "--seconds", str(args.seconds),
               "--workers", str(args.workers), "--batch", str(args.batch), "--device", args.device,
               "--arch", args.arch, "--block", str(args.block)]
        env = {**env, "PYTHONPATH": str(common.ROOT)}
        procs = [subprocess.Popen([*cmd, "--index", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env) for i in range(k)]
        start = time.perf_counter()
        while len(list(Path(sync).glob("ready-*"))) < k:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.1)
        ready_s = time.perf_counter() - start
        Path(sync, "go").touch()
        outputs = [p.communicate() for p in procs]
    failed = [err[-2000:] for p, (_, err) in zip(procs, outputs, strict=True) if p.returncode]
    if failed:
        return {"jobs": k, "failed": failed}
    per_job = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    return {"jobs": k, "images_per_s_total": sum(j["images_per_s"] for j in per_job),
            "images_per_s_per_job": [j["images_per_s"] for j in per_job], "seconds_to_ready": ready_s}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed window, all jobs training")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers per job")
    parser.add_argument("--batch", type=int, default=16, help="triplets per step (the paper: 16)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=4000, help="distinct images in the array cache")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--arch", default="resnet50", choices=["resnet50", "resnet18"])
    parser.add_argument("--block", type=int, default=50, help="steps between reads of the loss")
    parser.add_argument("--mps", action="store_true", help="run the sweep under NVIDIA MPS")
    args = parser.parse_args(argv)
    result = {"benchmark": "gpu_jobs_mps" if args.mps else "gpu_jobs", "args": vars(args), "machine": common.machine()}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if args.mps:
            try:
                env = stack.enter_context(mps_daemon(Path(tmp) / "mps"))
            except RuntimeError as err:
                result["mps_error"] = str(err)
                return common.report(result)
        cache = write_array_cache(Path(tmp) / "cache", args.images, args.size)
        result["sweep"] = {str(k): sweep(k, args, cache, env) for k in args.jobs}
    one = result["sweep"].get("1", {}).get("images_per_s_total")
    if one:
        result["total_over_one_job"] = {k: v["images_per_s_total"] / one for k, v in result["sweep"].items()
                                        if "images_per_s_total" in v}
    return common.report(result)


if __name__ == "__main__":
    if sys.argv[1:2] == ["job"]:
        job_parser = argparse.ArgumentParser()
        for name in ("--cache", "--sync", "--device", "--arch"):
            job_parser.add_argument(name)
        for name in ("--seconds",):
            job_parser.add_argument(name, type=float)
        for name in ("--workers", "--batch", "--index", "--block"):
            job_parser.add_argument(name, type=int)
        job(job_parser.parse_args(sys.argv[2:]))
    else:
        main()
