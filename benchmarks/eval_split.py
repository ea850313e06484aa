"""The whole test evaluation of a retrieval split at its real size: embedding through the feed and
exact scoring (agman.evaluation.retrieval.evaluate_retrieval), with the paper's model.

FashionAI's test split as docs/evaluation.md gives it (ASEN's per-type query counts, candidates
4x each: 3,600 queries and 14,400 candidates, one attribute type per image, so 18,000 distinct
images). ``--types-per-image 5`` embeds each image under 5 types instead (DeepFashion's case):
the rows are 5x the images, and the backbone runs once per image. The images are random pixels
in an array cache (the time does not depend on them); the model is ResNet-50 AG-MAN at 224 px
with random weights, in eval mode. Timed: one warm-up evaluation, then the median of
``--repeats``, each synchronised.

    python benchmarks/eval_split.py --device cuda                          # on the GPU machine
    python benchmarks/eval_split.py --device cpu --scale 0.01 --size 32 --arch resnet18 --repeats 1   # toy
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

import common
import numpy as np
import pandas as pd
import torch
from eval_map import DATASETS
from gpu_jobs import write_array_cache

from agman.config import ModelConfig
from agman.data.cache import ImageCache
from agman.data.feed import build_feed
from agman.device import resolve_memory_format
from agman.evaluation.retrieval import EmbedSettings, evaluate_retrieval
from agman.models import build_model


def fashionai_test_table(scale: float, types_per_image: int, seed: int = 0) -> pd.DataFrame:
    """The test split's rows: per type its queries and 4x candidates, values drawn per type."""
    rng = np.random.default_rng(seed)
    rows, image = [], 0
    for a, (queries, values) in enumerate(DATASETS["fashionai"]):
        q = max(2, round(queries * scale))
        for role, n in (("query", q), ("candidate", 4 * q)):
            for value in rng.integers(0, values, n):
                rows.append(("test", role, a, int(value), image))
                image += 1
    table = pd.DataFrame(rows, columns=["split", "role", "attribute_index", "value", "entry"])
    if types_per_image > 1:  # each image under several types: entries repeat, 1 image per types_per_image rows
        table["entry"] = table["entry"] // types_per_image
    return table


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--arch", default="resnet50", choices=["resnet50", "resnet18"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 512], help="eval.batch_size values")
    parser.add_argument("--feeds", nargs="+", default=["host", "device"])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--types-per-image", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    result = {"benchmark": "eval_split", "args": vars(args), "machine": common.machine(), "runs": {}}
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone=args.arch, pretrained=False), len(DATASETS["fashionai"]))
    fmt = resolve_memory_format("auto", device)
    model = model.to(device, memory_format=fmt).eval()
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    with tempfile.TemporaryDirectory() as tmp:
        tables = {k: fashionai_test_table(args.scale, k) for k in args.types_per_image}
        images = max(int(t["entry"].max()) + 1 for t in tables.values())
        cache = ImageCache(write_array_cache(Path(tmp) / "cache", images, args.size))
        names = [f"type{a}" for a in range(len(DATASETS["fashionai"]))]
        for feed_name in args.feeds:
            feed = build_feed(feed_name, cache, device, args.workers)
            for k, table in tables.items():
                for batch in args.batch_sizes:
                    settings = EmbedSettings(batch, "bfloat16", fmt)
                    run = functools.partial(evaluate_retrieval, model, table, feed, "test", names, settings=settings,
                                            chunk_size=1024)
                    out = run()  # warm-up: workers, autotuner
                    seconds, every = common.median_seconds(run, args.repeats, sync)
                    result["runs"][f"{feed_name}/types_per_image_{k}/batch_{batch}"] = {
                        "rows": len(table), "images": int(table["entry"].nunique()), "queries": out["n_queries"],
                        "candidates": out["n_candidates"], "seconds": seconds, "seconds_all": every,
                        "rows_per_s": len(table) / seconds}
            del feed
    return common.report(result)


if __name__ == "__main__":
    main()
