"""Time one AG-MAN training step (forward + backward + Adam) on the current device.

Compares memory formats, and the step with and without the classification branch, in the
same run; prints JSON with median seconds per step and ratios against the contiguous
baseline. Used to pick the demo profile's settings:

    .venv/bin/python benchmarks/train_step.py --backbone resnet18 --size 64 --batch 32
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import common  # noqa: F401  (puts the repo root first on sys.path)
import torch

from agman.config import ModelConfig
from agman.device import resolve_memory_format
from agman.losses import attribute_classification_loss, triplet_ranking_loss
from agman.models import build_model


def step_seconds(cfg: ModelConfig, size: int, batch: int, memory_format: str, device: torch.device,
                 repeats: int) -> float:
    torch.manual_seed(0)
    fmt = resolve_memory_format(memory_format, device)
    model = build_model(cfg, 8).to(device).to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.randn(3 * batch, 3, size, size, device=device).contiguous(memory_format=fmt)  # (3B, 3, H, W)
    attr = torch.randint(0, 8, (3 * batch,), device=device)
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model(images, attr, with_logits=cfg.cls_loss)
        a, p, n = out.embedding.chunk(3)
        loss = triplet_ranking_loss(a, p, n, 0.2)
        if out.logits is not None:
            loss = loss + attribute_classification_loss(out.logits, attr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step pays one-off allocation and kernel selection
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32, help="triplets per step (3x images)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    base = ModelConfig(backbone=args.backbone, pretrained=False)
    cases = {
        "contiguous": (base, "contiguous"),
        "channels_last": (base, "channels_last"),
        "contiguous_no_cls_branch": (dataclasses.replace(base, cls_loss=False), "contiguous"),
    }
    seconds = {name: step_seconds(cfg, args.size, args.batch, fmt, device, args.repeats)
               for name, (cfg, fmt) in cases.items()}
    result = {
        "device": str(device), "threads": torch.get_num_threads(), **vars(args),
        "seconds_per_step": seconds,
        "speedup_vs_contiguous": {k: seconds["contiguous"] / v for k, v in seconds.items()},
    }
    return common.report(result)


if __name__ == "__main__":
    main()
