"""FLOPs of one training image for every cell of the paper profile, against ResNet-50, and the
wall time of the whole matrix estimated from published ResNet-50 throughputs.

FLOPs are counted by torch.utils.flop_counter on the meta device (no arithmetic is run): one
forward + backward of the cell's model at ``--size`` px with its real losses' inputs (the
embedding, and the classification logits when the variant trains them). The time estimate
assumes a cell's step runs at the same FLOP rate as the published ResNet-50 training step, so
it is an ESTIMATE FROM A PUBLISHED ANCHOR, not a measurement (benchmarks/gpu_train_step.py
measures the real ratio on a GPU).

    python benchmarks/flops.py                 # 224 px, the paper profile of params.yaml
"""

from __future__ import annotations

import argparse
import dataclasses

import common  # noqa: F401  (puts the repo root first on sys.path)
import torch
import torchvision
import yaml
from torch.utils.flop_counter import FlopCounterMode

from agman.config import resolve
from agman.data.registry import dataset_spec
from agman.models import build_model, trains_classification
from agman.pipeline.matrix import cell_config

# Published ResNet-50 training throughputs at 224 px (docs/performance.md, and the NVIDIA
# DeepLearningExamples ResNet50 v1.5 PyTorch README for TF32 and 8 GPUs). Not measured here.
# Attribute types per dataset (docs/datasets.md: FashionAI's 8 tasks, DeepFashion's 5 types,
# Zappos50k's 4 conditions); they size only the tiny attribute embeddings and classifier.
N_TYPES = {"fashionai": 8, "deepfashion": 5, "zappos": 4}
ANCHORS = {
    "h100_sxm_amp_1gpu": 2800,  # Lambda, AMP (docs/performance.md)
    "a100_amp_channels_last_1gpu": 2470,  # NVIDIA DLE, AMP (docs/performance.md)
    "a100_tf32_1gpu": 938,  # NVIDIA DLE, TF32 (what "fp32" convolutions run as on A100/H100)
    "a100_amp_8gpu": 16621,  # NVIDIA DLE, 8x A100, AMP: 6.72x one GPU
    "a100_tf32_8gpu": 7248,  # NVIDIA DLE, 8x A100, TF32: 7.72x one GPU
}
# No fp32/TF32 H100 figure is among the published ones in docs/performance.md: derived from the H100 AMP figure and
# DLE's A100 AMP/TF32 ratio (2470 / 938 = 2.63). A derived estimate, not an anchor.
DERIVED = {"h100_tf32_1gpu_derived": ANCHORS["h100_sxm_amp_1gpu"] * ANCHORS["a100_tf32_1gpu"]
           / ANCHORS["a100_amp_channels_last_1gpu"]}


def longest_first(hours: list[float], gpus: int) -> float:
    """Makespan of independent jobs on ``gpus`` GPUs, each next-longest job to the least-loaded GPU."""
    loads = [0.0] * gpus
    for h in sorted(hours, reverse=True):
        loads[loads.index(min(loads))] += h
    return max(loads)


def train_flops(model: torch.nn.Module, size: int, n_attributes: int, with_logits: bool, batch: int = 2) -> float:
    """FLOPs per image of forward + backward, counted on the meta device."""
    images = torch.randn(batch, 3, size, size, device="meta")
    attr = torch.zeros(batch, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        if n_attributes:
            out = model(images, attr, with_logits=with_logits)
            loss = out.embedding.sum() + (out.logits.sum() if out.logits is not None else 0)
        else:
            loss = model(images).sum()
        loss.backward()
    return counter.get_total_flops() / batch


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(common.ROOT / "params.yaml"))
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--cells", nargs="+", help="only these cells (default: every cell of the profile)")
    args = parser.parse_args(argv)
    params = yaml.safe_load(open(args.params))
    params["profile"] = args.profile
    cfg, _ = resolve(params)

    with torch.device("meta"):
        reference = train_flops(torchvision.models.resnet50(), args.size, 0, False)
    cells, per_variant = {}, {}
    for name in args.cells or cfg.cells:
        cell = cell_config(cfg, name, cfg.train.seeds[0])
        n_attr = N_TYPES[dataset_spec(cell.data.dataset).kind]
        key = (cfg.cells[name].variant, n_attr)
        if key not in per_variant:
            with torch.device("meta"):  # pretrained weights do not change the FLOPs
                model = build_model(dataclasses.replace(cell.model, pretrained=False), n_attr)
            model.train()
            per_variant[key] = train_flops(model, args.size, n_attr, trains_classification(cell.model))
        images = cell.triplets.per_epoch * 3 * cell.train.epochs  # image passes (forward + backward)
        cells[name] = {"variant": cfg.cells[name].variant, "attribute_types": n_attr,
                       "gflop_per_image": per_variant[key] / 1e9,
                       "vs_resnet50": per_variant[key] / reference, "image_passes": images}
    passes = sum(c["image_passes"] for c in cells.values())
    rn50_equivalent = sum(c["image_passes"] * c["vs_resnet50"] for c in cells.values())
    estimate = {}
    for k, v in {**ANCHORS, **DERIVED}.items():
        estimate[k] = {"images_per_s": v, "hours": rn50_equivalent / v / 3600}
        if k.endswith("_1gpu") or k.endswith("_1gpu_derived"):  # the cells as 8 independent single-GPU jobs
            cell_hours = [c["image_passes"] * c["vs_resnet50"] / v / 3600 for c in cells.values()]
            estimate[k]["hours_8_gpus_independent_cells_longest_first"] = longest_first(cell_hours, 8)
    result = {
        "benchmark": "flops", "args": vars(args), "machine": common.machine(),
        "resnet50_gflop_per_training_image": reference / 1e9,
        "cells": cells,
        "matrix": {
            "cells": len(cells), "image_passes": passes, "resnet50_equivalent_image_passes": rn50_equivalent,
            "pflop": sum(c["image_passes"] * c["gflop_per_image"] for c in cells.values()) / 1e6,
        },
        "estimate_from_published_anchor_not_measured": {
            "assumes": "every cell trains at the anchor's ResNet-50 FLOP rate; training passes only "
                       "(no validation, no data stalls); 8-GPU figures of 1-GPU anchors schedule the "
                       "cells as independent single-GPU jobs",
            "by_anchor": estimate,
        },
    }
    return common.report(result)


if __name__ == "__main__":
    main()
