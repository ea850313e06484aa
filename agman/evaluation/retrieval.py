"""Attribute-specific fashion retrieval (ASFR) evaluation (Sec. IV-A1, docs/evaluation.md).

For each attribute type, the split's queries annotated with it are ranked against the split's
candidates annotated with it. Reported: ``map`` = mean AP over all queries (query-weighted, the
number the paper's tables print), ``map_macro`` = mean of per-attribute MAPs,
``map_per_attribute``, and ``map_chance``: the expected ``map`` of a random ranking of the same
queries and candidates (``random_ranking_ap``), the level a method must beat to have learned
anything. MAPs are in [0, 1]; the paper prints percentages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from agman.data.cache import ImageCache
from agman.data.images import ImageDataset, normalise
from agman.device import autocast_context
from agman.metrics import average_precisions, random_ranking_ap


def embed(model: torch.nn.Module, cache: ImageCache, entries: np.ndarray, attributes: np.ndarray, batch_size: int,
          device: torch.device, num_workers: int = 0, desc: str = "embed", amp_dtype: str = "none") -> torch.Tensor:
    """Embeddings (N, c') float32 of cache entries ``entries`` under the attribute indices
    ``attributes``; autocast (``train.amp_dtype``, CUDA only) covers the model's forward alone."""
    with torch.no_grad():  # a decorator would hide the body from mutation testing
        loader = DataLoader(ImageDataset(cache, entries, attributes), batch_size=batch_size, shuffle=False,
                            num_workers=num_workers)
        model.eval()
        chunks = []
        for images, attr in tqdm(loader, desc=desc, leave=False, unit="batch"):
            with autocast_context(device, amp_dtype):
                out = model(normalise(images.to(device)), attr.to(device))  # uint8 across, float32 on the device
            chunks.append(out.embedding.float())
        return torch.cat(chunks) if chunks else torch.zeros(0, 1, device=device)


def score_split(embeddings: torch.Tensor, table: pd.DataFrame, attribute_names: list[str],
                chunk_size: int = 1024) -> dict:
    """Retrieval metrics of one split from its embeddings (rows aligned with ``table``)."""
    roles = table["role"].to_numpy()
    attrs = table["attribute_index"].to_numpy()
    value_array = table["value"].to_numpy()
    values = torch.tensor(value_array, device=embeddings.device)
    per_attribute, all_ap, all_chance, names = {}, [], [], []
    for a, name in enumerate(attribute_names):
        q = np.flatnonzero((roles == "query") & (attrs == a))
        c = np.flatnonzero((roles == "candidate") & (attrs == a))
        if len(q) == 0:
            continue
        ap = average_precisions(embeddings[q], values[q], embeddings[c], values[c], chunk_size)
        per_value = np.bincount(value_array[c], minlength=int(value_array[q].max()) + 1)  # candidates per value
        n_relevant = per_value[value_array[q]]  # (Q_a,)
        per_attribute[name] = float(ap.mean())
        all_ap.append(ap)
        all_chance.append(random_ranking_ap(n_relevant, len(c)))
        names += [name] * len(q)
    if not all_ap:
        raise ValueError("the split has no queries")
    ap, chance = np.concatenate(all_ap), np.concatenate(all_chance)
    return {
        "map": float(ap.mean()),
        "map_chance": float(chance.mean()),
        "map_macro": float(np.mean(list(per_attribute.values()))),
        "map_per_attribute": per_attribute,
        "n_queries": int(len(ap)),
        "n_candidates": int((roles == "candidate").sum()),
        # One row per query in a fixed order (attribute, then table row): the paired samples of
        # the tables' significance test.
        "per_item": pd.DataFrame({"attribute": names, "ap": ap, "chance_ap": chance}),
    }


def evaluate_retrieval(model: torch.nn.Module, table: pd.DataFrame, cache: ImageCache, split: str,
                       attribute_names: list[str], batch_size: int, chunk_size: int, device: torch.device,
                       num_workers: int = 0, amp_dtype: str = "none") -> dict:
    rows = table[table["split"] == split].reset_index(drop=True)
    emb = embed(model, cache, rows["entry"].to_numpy(), rows["attribute_index"].to_numpy(), batch_size, device,
                num_workers, desc=f"embed {split}", amp_dtype=amp_dtype)
    return score_split(emb, rows, attribute_names, chunk_size)
