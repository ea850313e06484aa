"""Evaluation of a prepared split under the dataset's task: retrieval MAP (FashionAI,
DeepFashion) or triplet relation prediction (Zappos50k)."""

from __future__ import annotations

import numpy as np
import torch

from agman.config import Config
from agman.data.feed import Feed, build_feed
from agman.data.prepared import PreparedData
from agman.device import resolve_memory_format
from agman.evaluation.retrieval import EmbedSettings, evaluate_retrieval
from agman.evaluation.triplet_relation import evaluate_triplets

#: The number each task's tables print, used to pick the best epoch: MAP or prediction accuracy.
SCORE = {"retrieval": "map", "triplets": "accuracy"}


def evaluate(model: torch.nn.Module, data: PreparedData, split: str, cfg: Config, device: torch.device,
             feed: Feed | None = None) -> dict:
    """Metrics of ``split`` ("valid" or "test"); ``score`` is the task's headline number. Autocast
    (``train.amp_dtype``, CUDA only) covers the model's forward; the scoring is exact. ``feed``
    (``data.feed``'s, built when not given) brings the pixels to ``device``."""
    feed = feed or build_feed(cfg.data.feed, data.cache, device, cfg.data.num_workers)
    settings = EmbedSettings(cfg.eval.batch_size, cfg.train.amp_dtype, resolve_memory_format(cfg.train.memory_format,
                                                                                             device))
    if data.task == "retrieval":
        out = evaluate_retrieval(model, data.table, feed, split, data.attributes, settings=settings,
                                 chunk_size=cfg.eval.chunk_size)
    else:
        if split not in data.triplets:
            raise KeyError(f"no {split} triplets in the prepared data (have: {sorted(data.triplets)})")
        out = evaluate_triplets(model, data.triplets[split], data.entries, feed, data.attributes,
                                margin=cfg.loss.margin, settings=settings, desc=f"embed {split}")
    return {**out, "score": out[SCORE[data.task]]}


def mean_over_seeds(per_seed: list[dict]) -> dict:
    """Every numeric leaf averaged over seeds (nested dicts kept); ``n_seeds`` added."""
    def mean(values):
        if isinstance(values[0], dict):
            return {k: mean([v[k] for v in values]) for k in values[0]}
        if all(v == values[0] for v in values):
            return values[0]
        return float(np.mean(values))

    return {**mean(per_seed), "n_seeds": len(per_seed)}


def flat_metrics(metrics: dict, prefix: str) -> dict[str, float]:
    """``{"<prefix>_map": ..., "<prefix>_map_<attribute>": ...}``: the scalars for curves and MLflow."""
    out = {}
    for key, value in metrics.items():
        if key == "per_item":
            continue
        if isinstance(value, dict):
            for name, inner in value.items():
                if isinstance(inner, dict):
                    out.update({f"{prefix}_{k}_{name}": v for k, v in inner.items() if k != "n_triplets"})
                else:
                    out[f"{prefix}_{key.removesuffix('_per_attribute')}_{name}"] = inner
        elif not key.startswith("n_"):
            out[f"{prefix}_{key}"] = value
    return out
