"""Triplet relation prediction (Zappos50k, Sec. IV-A2, Table 4; docs/evaluation.md).

Each test triplet (anchor, close, far | condition) is correct when the anchor's embedding under
that condition is strictly more similar to the close image's than to the far image's. Reported
overall and per condition: prediction accuracy and the average triplet loss (Eq. 8, margin m).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from agman.data.cache import ImageCache
from agman.evaluation.retrieval import embed
from agman.metrics import triplet_relation, triplet_relation_per_item


def evaluate_triplets(model: torch.nn.Module, triplets: np.ndarray, entries: np.ndarray, cache: ImageCache,
                      condition_names: list[str], margin: float, batch_size: int, device: torch.device,
                      num_workers: int = 0, desc: str = "embed", amp_dtype: str = "none") -> dict:
    """``triplets`` (T, 4): table rows (anchor, close, far) and the condition index;
    ``entries[row]`` is a row's image in the cache.

    Each image is embedded once per condition it appears under (embeddings depend on the
    condition), not once per triplet.
    """
    with torch.no_grad():  # a decorator would hide the body from mutation testing
        if len(triplets) == 0:
            raise ValueError("no triplets to evaluate")
        per_condition, correct, losses, total, items = {}, 0.0, 0.0, 0, []
        for c, name in enumerate(condition_names):
            t = triplets[triplets[:, 3] == c]  # (Tc, 4)
            if len(t) == 0:
                continue
            rows, inverse = np.unique(t[:, :3], return_inverse=True)  # unique images, (Tc*3,) positions
            emb = embed(model, cache, entries[rows], np.full(len(rows), c), batch_size, device, num_workers,
                        desc=f"{desc} {name}", amp_dtype=amp_dtype)
            a, close, far = emb[torch.as_tensor(inverse.reshape(-1, 3), device=emb.device)].unbind(1)  # 3 x (Tc, D)
            result = triplet_relation(a, close, far, margin)
            right, loss = triplet_relation_per_item(a, close, far, margin)
            items.append(pd.DataFrame({"condition": name, "correct": right.astype(int), "loss": loss}))
            per_condition[name] = {"accuracy": result["accuracy"], "loss": result["average_loss"], "n_triplets": len(t)}
            correct += result["accuracy"] * len(t)
            losses += result["average_loss"] * len(t)
            total += len(t)
        if total != len(triplets):
            raise ValueError(f"{len(triplets) - total} triplets have a condition index outside "
                             f"0-{len(condition_names) - 1}")
        return {
            "accuracy": correct / total,
            "loss": losses / total,
            "per_condition": per_condition,
            "n_triplets": total,
            # One row per triplet, by condition then list order: the tables' paired samples.
            "per_item": pd.concat(items, ignore_index=True),
        }
