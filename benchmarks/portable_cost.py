"""The cost of ``train.portable`` (agman.portable): ResNet-18 AG-MAN training steps on the CPU
with and without it, contiguous and channels_last, timed in the same run.

The setting must be in place before a process computes anything, so every case runs in a fresh
process of its own; the cases take turns, round after round, so that a change in the machine's
load reaches them all. Each process also hashes the weights its steps produced: the same case
twice gives the same hash, portable and default differ. Prints JSON; the ratio is portable
seconds per step over default seconds per step:

    .venv/bin/python benchmarks/portable_cost.py --size 64 --batch 32     # the demo's FashionAI cells

``--conv onednn nnpack aten`` adds, per memory format, portable cases whose convolutions run on
other code (``benchmarks/cross_machine.py``'s ``CONV``), ``portable_nnpack`` and ``portable_aten``,
with their ratios to the portable case.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time

import torch
from common import machine, report  # first: puts the repo root first on sys.path
from cross_machine import CONV, set_conv

from agman import portable
from agman.config import ModelConfig
from agman.losses import attribute_classification_loss, triplet_ranking_loss
from agman.models import build_model

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
N_ATTRIBUTES = 8


def weights_sha256(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def steps(size: int, batch: int, memory_format: str, n: int) -> dict:
    """``n`` timed training steps after one untimed (its one-off kernel selection), in this process."""
    torch.manual_seed(0)
    fmt = FORMATS[memory_format]
    model = build_model(ModelConfig(backbone="resnet18", pretrained=False, embed_dim=256), N_ATTRIBUTES)
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randn(3 * batch, 3, size, size).contiguous(memory_format=fmt)  # (3B, 3, H, W)
    attr = torch.randint(0, N_ATTRIBUTES, (3 * batch,))
    times = []
    for i in range(n + 1):
        start = time.perf_counter()
        out = model(images, attr, with_logits=True)
        a, p, neg = out.embedding.chunk(3)
        loss = triplet_ranking_loss(a, p, neg, 0.2) + attribute_classification_loss(out.logits, attr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - start)
    return {"seconds_per_step": statistics.median(times), "weights_sha256": weights_sha256(model),
            "threads": torch.get_num_threads(), "aten_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def child(args) -> None:
    if args.portable:
        portable.enter()
    set_conv(args.conv[0])
    result = steps(args.size, args.batch, args.memory_format, args.steps)
    result.update(mkldnn=torch.backends.mkldnn.enabled, nnpack=torch._C._get_nnpack_enabled())
    print(json.dumps(result))


def mode(on: bool, conv: str) -> str:
    """A case's name after the memory format: default, portable, portable_nnpack, portable_aten."""
    return "default" if not on else "portable" if conv == "onednn" else f"portable_{conv}"


def run_case(args, memory_format: str, on: bool, conv: str = "onednn") -> dict:
    cmd = [sys.executable, __file__, "--child", "--memory-format", memory_format, "--size", str(args.size),
           "--batch", str(args.batch), "--steps", str(args.steps), "--conv", conv] + (["--portable"] if on else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32, help="triplets per step (3x images)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per case, taking turns")
    parser.add_argument("--conv", nargs="+", choices=sorted(CONV), default=["onednn"],
                        help="the code that runs the portable cases' convolutions, one case per choice")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--portable", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-format", choices=sorted(FORMATS), default="contiguous", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return {}
    convs = ["onednn"] + [c for c in dict.fromkeys(args.conv) if c != "onednn"]
    cases = [(fmt, False, "onednn") for fmt in FORMATS] + [(fmt, True, c) for fmt in FORMATS for c in convs]
    cases.sort(key=lambda case: list(FORMATS).index(case[0]))
    results = {case: [] for case in cases}
    for _ in range(args.rounds):
        for case in cases:
            results[case].append(run_case(args, *case))
    runs = {f"{fmt}/{mode(on, conv)}": r for (fmt, on, conv), r in results.items()}
    seconds = {name: statistics.median(r["seconds_per_step"] for r in rs) for name, rs in runs.items()}
    others = [name for name in runs if name.split("/")[1] not in ("default", "portable")]
    result = {
        "machine": machine(), "size": args.size, "batch": args.batch, "steps": args.steps, "rounds": args.rounds,
        "seconds_per_step": seconds,
        "portable_over_default": {fmt: seconds[f"{fmt}/portable"] / seconds[f"{fmt}/default"] for fmt in FORMATS},
        "runs": runs,
        "reruns_identical": {name: len({r["weights_sha256"] for r in rs}) == 1 for name, rs in runs.items()},
        "portable_changes_the_weights": {fmt: runs[f"{fmt}/portable"][0]["weights_sha256"]
                                         != runs[f"{fmt}/default"][0]["weights_sha256"] for fmt in FORMATS},
    }
    if others:
        result["over_portable"] = {name: seconds[name] / seconds[f"{name.split('/')[0]}/portable"] for name in others}
        result["over_default"] = {name: seconds[name] / seconds[f"{name.split('/')[0]}/default"] for name in others}
        result["changes_the_portable_weights"] = {
            name: rs[0]["weights_sha256"] != runs[f"{name.split('/')[0]}/portable"][0]["weights_sha256"]
            for name, rs in runs.items() if name in others}
    return report(result)


if __name__ == "__main__":
    main()
