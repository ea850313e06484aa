"""Images/s of the AG-MAN training step (agman.training.step) on one GPU: eager, replayed from a
CUDA graph, and under torch.compile(mode="reduce-overhead"), against a plain ResNet-50 step.

The step is the training loop's own TrainStep: 3B uint8 images (anchors, positives, negatives)
mirrored and normalised on the device, the real model (ResNet-50, embedding 1024, hierarchical
feature and classification branch on), triplet + classification loss under uncertainty
weighting, backward, Adam (capturable on CUDA). Inputs are random tensors already on the device:
this measures the step, not the data path (benchmarks/data_path.py does that).

Settings:
- ``eager_fp32_nchw``: float32 (TF32 convolutions, as PyTorch defaults), contiguous NCHW: the
  public code's; cuDNN's autotuner off, as in the training loop by default;
- ``eager_bf16_cl``: bf16 autocast + channels_last, eagerly (autotuner off);
- ``graphed_bf16_cl``: the same replayed from a CUDA graph (GraphedStep), cuDNN's autotuner on;
  ``graphed_bf16_cl_no_autotune`` with it off;
- ``compiled_bf16_cl`` (only when named in ``--settings``): the model under
  torch.compile(mode="reduce-overhead") (its own CUDA graphs for forward and backward), Adam eager;
- ``plain_resnet50``: a torchvision ResNet-50 step (cross-entropy over 1,000 classes, Adam) on
  the same number of images, eager bf16 channels_last: the reference.

Timing: ``--warmup`` steps (graph capture or compilation included), then ``--repeats`` blocks of
``--steps`` steps, each block between torch.cuda.synchronize() calls (the loop itself does not
synchronise per step); median block, per step. ``--digest N`` instead trains N graphed steps from
seed 0 on seeded inputs and prints the SHA-256 of the weights: two processes comparing digests
tell whether a rerun on the same GPU is bit-identical.

    python benchmarks/gpu_train_step.py --device cuda               # on the GPU machine
    python benchmarks/gpu_train_step.py --device cuda --settings eager_bf16_cl graphed_bf16_cl compiled_bf16_cl
    python benchmarks/gpu_train_step.py --device cuda --digest 30 --autotune off
    python benchmarks/gpu_train_step.py --device cpu --size 32 --batch 2 --steps 1 --repeats 1 --arch resnet18  # toy
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

import common  # noqa: F401  (puts the repo root first on sys.path)
import torch
import torch.nn.functional as F
import torchvision

from agman.config import LossConfig, ModelConfig
from agman.data.images import normalise
from agman.losses import build_weighting
from agman.models import build_model, trains_classification
from agman.training.step import GraphedStep, StepSettings, TrainStep, build_optimizer

N_ATTRIBUTES = 8  # FashionAI's attribute types
SETTINGS = {
    # name: (autocast dtype, memory format, how the step runs, cuDNN autotuner)
    "eager_fp32_nchw": ("none", torch.contiguous_format, "eager", False),
    "eager_bf16_cl": ("bfloat16", torch.channels_last, "eager", False),
    "graphed_bf16_cl": ("bfloat16", torch.channels_last, "graphed", True),
    "graphed_bf16_cl_no_autotune": ("bfloat16", torch.channels_last, "graphed", False),
    "compiled_bf16_cl": ("bfloat16", torch.channels_last, "compiled", True),
}


def agman_step(setting: str, batch: int, device: torch.device, arch: str):
    amp, fmt, mode, autotune = SETTINGS[setting]
    torch.backends.cudnn.benchmark = autotune
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=arch, pretrained=False)
    model = build_model(cfg, N_ATTRIBUTES).to(device, memory_format=fmt).train()
    with_logits = trains_classification(cfg)
    weighting = build_weighting(LossConfig(), with_cls=with_logits).to(device)
    optimizer = build_optimizer([*model.parameters(), *weighting.parameters()], 1e-4, device)
    forward = torch.compile(model, mode="reduce-overhead", dynamic=False) if mode == "compiled" else model
    step = TrainStep(forward, weighting, optimizer, StepSettings(0.2, with_logits, amp, fmt), device)
    if mode == "graphed":
        step = GraphedStep(step, images=3 * batch)
    return step, model


def plain_step(batch: int, device: torch.device, arch: str):
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).to(device, memory_format=torch.channels_last).train()
    optimizer = build_optimizer(list(model.parameters()), 1e-4, device)
    target = torch.randint(0, 1000, (3 * batch,), device=device)

    def step(images, flips, attrs):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(normalise(images, flips).contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step, model


def inputs(batch: int, size: int, device: torch.device, seed: int = 0):
    """A batch as the feed hands it over: (3B, 3, S, S) uint8 channels-last, flips, attribute types."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (3 * batch, size, size, 3), dtype=torch.uint8, generator=g)
    flips = torch.rand(3 * batch, generator=g) < 0.5
    attrs = torch.randint(0, N_ATTRIBUTES, (batch,), generator=g).repeat(3)
    return images.permute(0, 3, 1, 2).to(device), flips.to(device), attrs.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(step, batch: int, size: int, device: torch.device, args) -> dict:
    data = [inputs(batch, size, device, seed) for seed in range(4)]  # rotated: not one buffer over and over
    start = time.perf_counter()
    for k in range(args.warmup):
        step(*data[k % 4])
    sync(device)
    warmup_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    blocks = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for k in range(args.steps):
            step(*data[k % 4])
        sync(device)
        blocks.append((time.perf_counter() - start) / args.steps)
    seconds = statistics.median(blocks)
    out = {"batch_triplets": batch, "images_per_step": 3 * batch, "seconds_per_step": seconds,
           "images_per_s": 3 * batch / seconds, "seconds_per_step_all_blocks": blocks, "warmup_seconds": warmup_s}
    if device.type == "cuda":
        out["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def digest(args, device: torch.device) -> dict:
    """SHA-256 of the weights after ``args.digest`` graphed steps from seed 0 on seeded inputs."""
    setting = "graphed_bf16_cl" if args.autotune == "on" else "graphed_bf16_cl_no_autotune"
    setting = setting if device.type == "cuda" else "eager_bf16_cl"  # no graphs on a CPU
    step, model = agman_step(setting, args.batch, device, args.arch)
    for k in range(args.digest):
        step(*inputs(args.batch, args.size, device, seed=k))
    sync(device)
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return {"setting": setting, "steps": args.digest, "weights_sha256": h.hexdigest()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16, help="triplets per step (the paper: 16)")
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS),
                        default=[s for s in SETTINGS if "compiled" not in s],
                        help="what to time (graphs and compile need CUDA; eager_bf16_cl is the ratios' base)")
    parser.add_argument("--arch", default="resnet50", choices=["resnet50", "resnet18"],
                        help="AG-MAN's backbone and the plain classifier (resnet18 only for quick CPU checks)")
    parser.add_argument("--digest", type=int, default=0, help="only: the weights' SHA-256 after N graphed steps")
    parser.add_argument("--autotune", default="on", choices=["on", "off"], help="cuDNN's autotuner, with --digest")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    result = {"benchmark": "gpu_train_step", "args": vars(args), "machine": common.machine()}
    if args.digest:
        result["digest"] = digest(args, device)
        return common.report(result)
    names = [s for s in dict.fromkeys(["eager_bf16_cl", *args.settings])
             if device.type == "cuda" or SETTINGS[s][2] == "eager"]  # graphs and compile need CUDA
    runs = {}
    for name in names:
        step, _ = agman_step(name, args.batch, device, args.arch)
        runs[name] = measure(step, args.batch, args.size, device, args)
        del step
    step, _ = plain_step(args.batch, device, args.arch)
    runs[f"plain_{args.arch}"] = measure(step, args.batch, args.size, device, args)
    result["runs"] = runs
    base = runs["eager_bf16_cl"]["images_per_s"]
    result["over_eager_bf16_cl"] = {k: v["images_per_s"] / base for k, v in runs.items()}
    return common.report(result)


if __name__ == "__main__":
    main()
