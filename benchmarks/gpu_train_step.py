"""Images/s of the AG-MAN triplet training step on one GPU, against a plain ResNet-50 step.

The AG-MAN step is the training loop's (agman.training.loop._train_epoch): anchors, positives and
negatives stacked into one forward pass of 3B images, the real model (agman.models.build_model,
ResNet-50, embedding 1024, hierarchical feature and classification branch on), the real losses
(triplet ranking + attribute classification under uncertainty weighting), backward, Adam. Inputs
are random tensors already on the device: this measures the step, not the data path
(benchmarks/data_path.py does that).

Settings: ``fp32_nchw`` (the public code's: float32, contiguous NCHW), ``bf16_channels_last``
(bf16 autocast + channels_last, this project's CUDA default), and with ``--compile`` also
``bf16_channels_last_compiled`` (torch.compile of the model). Each at batch 16 triplets (the
paper's) and at the largest batch that fits, found by a bounded search on CUDA out-of-memory;
the bf16 setting is also measured at fp32's largest batch, so the two compare at the same batch.
The reference is a torchvision ResNet-50 step (forward + backward + Adam, cross-entropy over
1000 classes) on the same number of images, in the same run.

Timing: ``--warmup`` steps, then ``--repeats`` steps each timed between torch.cuda.synchronize()
calls; median.

    python benchmarks/gpu_train_step.py --device cuda --compile          # on the GPU machine
    python benchmarks/gpu_train_step.py --device cpu --size 32 --batch 2 --repeats 2   # toy check
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import time

import common  # noqa: F401  (puts the repo root first on sys.path)
import torch
import torch.nn.functional as F
import torchvision

from agman.config import LossConfig, ModelConfig
from agman.losses import attribute_classification_loss, build_weighting, triplet_ranking_loss
from agman.models import build_model, trains_classification

N_ATTRIBUTES = 8  # FashionAI's attribute types
SETTINGS = {
    # name: (autocast dtype or None, memory format, torch.compile)
    "fp32_nchw": (None, torch.contiguous_format, False),
    "bf16_channels_last": (torch.bfloat16, torch.channels_last, False),
    "bf16_channels_last_compiled": (torch.bfloat16, torch.channels_last, True),
}


class Step:
    """One model + optimizer under one setting; ``run(batch)`` does one training step."""

    def __init__(self, kind: str, setting: str, size: int, device: torch.device, arch: str = "resnet50"):
        self.kind, self.size, self.device = kind, size, device
        self.amp, self.fmt, compiled = SETTINGS[setting]
        torch.manual_seed(0)
        if kind == "agman":
            cfg = ModelConfig(backbone=arch, pretrained=False)
            self.model = build_model(cfg, N_ATTRIBUTES).to(device).to(memory_format=self.fmt)
            self.with_logits = trains_classification(cfg)
            self.weighting = build_weighting(LossConfig(), with_cls=self.with_logits).to(device)
            params = [*self.model.parameters(), *self.weighting.parameters()]
        else:  # the plain classifier
            self.model = getattr(torchvision.models, arch)(weights=None).to(device).to(memory_format=self.fmt)
            params = list(self.model.parameters())
        # dynamic=False: one graph per batch size, as training (a fixed batch) would use
        self.forward = torch.compile(self.model, dynamic=False) if compiled else self.model
        self.opt = torch.optim.Adam(params, lr=1e-4)
        self.model.train()
        self._inputs = {}

    def inputs(self, batch: int):
        if batch not in self._inputs:
            self._inputs.clear()
            n = 3 * batch  # anchors, positives, negatives
            images = torch.randn(n, 3, self.size, self.size, device=self.device).contiguous(memory_format=self.fmt)
            if self.kind == "agman":
                target = torch.randint(0, N_ATTRIBUTES, (batch,), device=self.device).repeat(3)  # (3B,)
            else:
                target = torch.randint(0, 1000, (n,), device=self.device)
            self._inputs[batch] = (images, target)
        return self._inputs[batch]

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def run(self, batch: int) -> None:
        images, target = self.inputs(batch)
        with self.autocast():
            if self.kind == "agman":
                out = self.forward(images, target, with_logits=self.with_logits)
            else:
                logits = self.forward(images)
        if self.kind == "agman":
            emb_a, emb_p, emb_n = out.embedding.float().chunk(3)  # 3 x (B, c')
            losses = {"triplet": triplet_ranking_loss(emb_a, emb_p, emb_n, 0.2)}
            if out.logits is not None:
                losses["cls"] = attribute_classification_loss(out.logits.float(), target)
            loss = self.weighting(losses)
        else:
            loss = F.cross_entropy(logits.float(), target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def fits(step: Step, batch: int) -> bool:
    """Two steps at ``batch`` (the second with Adam's state allocated) without CUDA OOM."""
    try:
        step.run(batch)
        step.run(batch)
        sync(step.device)
        return True
    except torch.cuda.OutOfMemoryError:
        pass
    step._inputs.clear()
    step.opt.zero_grad(set_to_none=True)
    free(step.device)
    return False


def largest_batch(step: Step, low: int, high: int, granularity: int) -> tuple[int | None, list]:
    """Largest batch in [low, high] (a multiple of ``granularity`` above ``low``) that fits:
    doubling from ``low``, then bisection. Returns it and the probes [(batch, fits)]."""
    probes = []

    def probe(b):
        ok = fits(step, b)
        probes.append((b, ok))
        return ok

    if not probe(low):
        return None, probes
    good, bad = low, None
    while bad is None and good < high:
        nxt = min(2 * good, high)
        if probe(nxt):
            good = nxt
        else:
            bad = nxt
    while bad is not None and bad - good > granularity:
        mid = max(good + granularity, (good + bad) // 2 // granularity * granularity)
        if mid >= bad:
            break
        if probe(mid):
            good = mid
        else:
            bad = mid
    step._inputs.clear()
    free(step.device)
    return good, probes


def measure(step: Step, batch: int, warmup: int, repeats: int) -> dict:
    device = step.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step.run(batch)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        step.run(batch)
        sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    out = {"batch_triplets": batch, "images_per_step": 3 * batch, "seconds_per_step": seconds,
           "images_per_s": 3 * batch / seconds, "seconds_all_repeats": times}
    if device.type == "cuda":
        out["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def measure_or_shrink(step: Step, batch: int, warmup: int, repeats: int, granularity: int, tries: int = 3) -> dict:
    """``measure``; on CUDA out-of-memory (the search's largest batch can fail later, once the
    allocator is fragmented) retry ``granularity`` smaller, noting the batch asked for."""
    for attempt in range(tries + 1):
        b = max(1, batch - attempt * granularity)
        try:
            out = measure(step, b, warmup, repeats)
        except torch.cuda.OutOfMemoryError:
            step._inputs.clear()
            step.opt.zero_grad(set_to_none=True)
            free(step.device)
            continue
        if b != batch:
            out["shrunk_from"] = batch
        return out
    raise RuntimeError(f"out of memory at batch {batch} and {tries} smaller ones")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16, help="triplets per step (the paper: 16)")
    parser.add_argument("--max-batch", type=int, default=1024, help="upper bound of the largest-batch search")
    parser.add_argument("--granularity", type=int, default=8, help="resolution of the largest-batch search")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also bf16 + channels_last + torch.compile")
    parser.add_argument("--arch", default="resnet50", choices=["resnet50", "resnet18"],
                        help="AG-MAN's backbone and the plain classifier (resnet18 only for quick CPU checks)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    result = {"benchmark": "gpu_train_step", "args": vars(args), "machine": common.machine(),
              "inputs": "random tensors on the device (no data loading)",
              # PyTorch's defaults, left as they are: "fp32" convolutions run as TF32 on Ampere/Hopper
              # (as in the public code), fp32 matmuls do not.
              "tf32": {"cudnn_conv": torch.backends.cudnn.allow_tf32,
                       "matmul": torch.backends.cuda.matmul.allow_tf32}}

    # Largest batch per precision setting (the compiled model is taken to fit what eager bf16 fits).
    largest, search = {}, {}
    for setting in ("fp32_nchw", "bf16_channels_last"):
        if device.type == "cuda":
            step = Step("agman", setting, args.size, device, args.arch)
            largest[setting], search[setting] = largest_batch(step, args.batch, args.max_batch, args.granularity)
            del step
            free(device)
        else:  # no OOM to search on: the "largest" batch is the given one
            largest[setting], search[setting] = args.batch, "skipped: not a CUDA device"
    result["largest_batch"] = largest
    result["largest_batch_search"] = search

    plan = {  # setting -> batches, AG-MAN
        "fp32_nchw": [args.batch, largest["fp32_nchw"]],
        "bf16_channels_last": [args.batch, largest["fp32_nchw"], largest["bf16_channels_last"]],
    }
    if args.compile:
        plan["bf16_channels_last_compiled"] = [args.batch, largest["bf16_channels_last"]]
    runs = {}
    for setting, batches in plan.items():
        step = Step("agman", setting, args.size, device, args.arch)
        for b in sorted({b for b in batches if b}):
            runs[f"agman/{setting}/{b}"] = measure_or_shrink(
                step, b, args.warmup * (4 if "compiled" in setting else 1), args.repeats, args.granularity)
        del step
        free(device)
    step = Step("plain", "bf16_channels_last", args.size, device, args.arch)
    for b in sorted({args.batch, largest["bf16_channels_last"]}):
        runs[f"plain_{args.arch}/bf16_channels_last/{b}"] = measure_or_shrink(step, b, args.warmup, args.repeats,
                                                                             args.granularity)
    del step
    free(device)
    result["runs"] = runs

    def rate(key):
        return runs[key]["images_per_s"] if key in runs else None

    def ratio(a, b):
        return None if a is None or b is None else a / b

    b, bf32, bbf = args.batch, largest["fp32_nchw"], largest["bf16_channels_last"]
    plain = f"plain_{args.arch}"
    agman_bf16, agman_fp32 = "agman/bf16_channels_last", "agman/fp32_nchw"
    compiled, plain_bf16 = "agman/bf16_channels_last_compiled", f"{plain}/bf16_channels_last"
    pairs = {  # name: (numerator run, denominator run), each "<model>/<setting>/<batch>"
        f"bf16_cl_over_fp32_nchw_at_{b}": (f"{agman_bf16}/{b}", f"{agman_fp32}/{b}"),
        f"bf16_cl_over_fp32_nchw_at_{bf32}": (f"{agman_bf16}/{bf32}", f"{agman_fp32}/{bf32}"),
        f"bf16_cl_at_{bbf}_over_fp32_nchw_at_{bf32}": (f"{agman_bf16}/{bbf}", f"{agman_fp32}/{bf32}"),
        f"compiled_over_fp32_nchw_at_{b}": (f"{compiled}/{b}", f"{agman_fp32}/{b}"),
        f"compiled_over_eager_bf16_cl_at_{bbf}": (f"{compiled}/{bbf}", f"{agman_bf16}/{bbf}"),
        f"{plain}_over_agman_at_{b}": (f"{plain_bf16}/{b}", f"{agman_bf16}/{b}"),
        f"{plain}_over_agman_at_{bbf}": (f"{plain_bf16}/{bbf}", f"{agman_bf16}/{bbf}"),
    }
    ratios = {name: ratio(rate(num), rate(den)) for name, (num, den) in pairs.items()}  # images/s over images/s
    result["ratios"] = ratios
    same_batch = [v for k, v in ratios.items() if k.startswith("bf16_cl_over_fp32_nchw_at_") and v is not None]
    result["targets"] = {
        # The targets are about ResNet-50 at 224 px on a GPU; elsewhere the booleans mean nothing.
        "apply": device.type == "cuda" and args.arch == "resnet50" and args.size == 224,
        "bf16_cl_over_fp32_nchw_same_batch_ge_2.5": max(same_batch) >= 2.5,
        f"{plain}_over_agman_le_1.3_at_{bbf}": ratios[f"{plain}_over_agman_at_{bbf}"] <= 1.3,
    }
    result["machine_after"] = {"load_average_1_5_15min": common.machine().get("load_average_1_5_15min")}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
