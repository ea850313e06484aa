"""Triplet relation prediction (Zappos50k, Sec. IV-A2, Table 4; docs/evaluation.md).

Each test triplet (anchor, close, far | condition) is correct when the anchor's embedding under
that condition is strictly more similar to the close image's than to the far image's. Reported
overall and per condition: prediction accuracy and the average triplet loss (Eq. 8, margin m).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from agman.data.feed import Feed
from agman.evaluation.retrieval import EmbedSettings, embed
from agman.metrics import triplet_relation, triplet_relation_per_item


def evaluate_triplets(model: torch.nn.Module, triplets: np.ndarray, entries: np.ndarray, feed: Feed,
                      condition_names: list[str], *, margin: float, settings: EmbedSettings,
                      desc: str = "embed") -> dict:
    """``triplets`` (T, 4): table rows (anchor, close, far) and the condition index;
    ``entries[row]`` is a row's image in the cache.

    Each image is embedded once per condition it appears under (embeddings depend on the
    condition), not once per triplet, and its attribute-independent features once in all.
    """
    with torch.no_grad():  # a decorator would hide the body from mutation testing
        if len(triplets) == 0:
            raise ValueError("no triplets to evaluate")
        n_conditions = len(condition_names)
        if triplets[:, 3].min() < 0 or triplets[:, 3].max() >= n_conditions:
            outside = int(((triplets[:, 3] < 0) | (triplets[:, 3] >= n_conditions)).sum())
            raise ValueError(f"{outside} triplets have a condition index outside 0-{n_conditions - 1}")
        # Every (table row, condition) pair once; key = row * conditions + condition.
        keys = triplets[:, :3] * n_conditions + triplets[:, 3:4]  # (T, 3)
        pairs, position = np.unique(keys, return_inverse=True)
        emb = embed(model, feed, entries[pairs // n_conditions], pairs % n_conditions, settings, desc=desc)
        position = torch.as_tensor(position.reshape(-1, 3), device=emb.device)  # (T, 3) rows of emb
        per_condition, correct, losses, total, items = {}, 0.0, 0.0, 0, []
        for c, name in enumerate(condition_names):
            mask = triplets[:, 3] == c
            if not mask.any():
                continue
            a, close, far = emb[position[torch.from_numpy(mask).to(emb.device)]].unbind(1)  # 3 x (Tc, D)
            result = triplet_relation(a, close, far, margin)
            right, loss = triplet_relation_per_item(a, close, far, margin)
            items.append(pd.DataFrame({"condition": name, "correct": right.astype(int), "loss": loss}))
            n = int(mask.sum())
            per_condition[name] = {"accuracy": result["accuracy"], "loss": result["average_loss"], "n_triplets": n}
            correct += result["accuracy"] * n
            losses += result["average_loss"] * n
            total += n
        return {
            "accuracy": correct / total,
            "loss": losses / total,
            "per_condition": per_condition,
            "n_triplets": total,
            # One row per triplet, by condition then list order: the tables' paired samples.
            "per_item": pd.concat(items, ignore_index=True),
        }
