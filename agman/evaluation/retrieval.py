"""Attribute-specific fashion retrieval (ASFR) evaluation (Sec. IV-A1, docs/evaluation.md).

For each attribute type, the split's queries annotated with it are ranked against the split's
candidates annotated with it. Reported: ``map`` = mean AP over all queries (query-weighted, the
number the paper's tables print), ``map_macro`` = mean of per-attribute MAPs,
``map_per_attribute``, and ``map_chance``: the expected ``map`` of a random ranking of the same
queries and candidates (``random_ranking_ap``), the level a method must beat to have learned
anything. MAPs are in [0, 1]; the paper prints percentages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from agman.data.feed import Feed
from agman.data.images import normalise
from agman.device import autocast_context
from agman.metrics import average_precisions_on_device, random_ranking_ap


@dataclass(frozen=True)
class EmbedSettings:
    batch_size: int  # images through the attribute-independent part at once (eval.batch_size)
    amp_dtype: str = "none"  # autocast of the forward on CUDA (train.amp_dtype); the scores are exact
    memory_format: torch.memory_format = torch.contiguous_format  # of the images the model takes


def embed(model: torch.nn.Module, feed: Feed, entries: np.ndarray, attributes: np.ndarray, settings: EmbedSettings,
          desc: str = "embed") -> torch.Tensor:
    """Embeddings (N, c') float32, on the feed's device, of cache entries ``entries`` under the
    attribute indices ``attributes``.

    Each distinct image runs the attribute-independent part of the model (``model.encode``) once,
    however many attribute types it is embedded under (up to 5 per DeepFashion image); only
    ``model.condition`` runs per (image, attribute) row. Autocast covers the model alone.
    """
    if len(entries) != len(attributes):
        raise ValueError(f"{len(entries)} images but {len(attributes)} attribute indices")
    with torch.no_grad():  # a decorator would hide the body from mutation testing
        images, image_of_row = np.unique(entries, return_inverse=True)  # distinct images; each row's image
        size = settings.batch_size
        order = np.argsort(image_of_row, kind="stable")  # rows grouped by image batch
        bounds = np.searchsorted(image_of_row[order], np.arange(0, len(images) + size, size))
        device = feed.device
        attrs = torch.tensor(np.asarray(attributes), dtype=torch.int64, device=device)  # (N,)
        batches = [images[start:start + size] for start in range(0, len(images), size)]
        model.eval()
        parts, rows_done = [], []
        for k, pixels in enumerate(tqdm(feed(batches), desc=desc, total=len(batches), leave=False, unit="batch")):
            rows = order[bounds[k]:bounds[k + 1]]  # the rows whose image is in this batch
            local = torch.from_numpy(image_of_row[rows] - k * size).to(device)  # (R,) position in the batch
            rows_t = torch.from_numpy(rows).to(device)
            x = normalise(pixels).contiguous(memory_format=settings.memory_format)  # (b, 3, S, S)
            with autocast_context(device, settings.amp_dtype):
                features = model.encode(x)  # (b, ...)
                emb = model.condition(features.index_select(0, local), attrs.index_select(0, rows_t))  # (R, c')
            parts.append(emb.float())
            rows_done.append(rows_t)
        if not parts:
            return torch.zeros(0, 1, device=device)
        out = torch.empty(len(entries), parts[0].shape[1], device=device)
        out[torch.cat(rows_done)] = torch.cat(parts)
        return out


def score_split(embeddings: torch.Tensor, table: pd.DataFrame, attribute_names: list[str],
                chunk_size: int = 1024) -> dict:
    """Retrieval metrics of one split from its embeddings (rows aligned with ``table``).

    The APs stay where the embeddings are until every attribute type is scored: on a GPU the
    scoring waits for the device once, not once per type."""
    roles = table["role"].to_numpy()
    attrs = table["attribute_index"].to_numpy()
    value_array = table["value"].to_numpy()
    # Rows grouped by type, queries before candidates: one copy to the device, then slices.
    is_candidate = roles == "candidate"
    order = np.lexsort((is_candidate, attrs))
    order = order[(roles[order] == "query") | is_candidate[order]]
    device = embeddings.device
    order_t = torch.from_numpy(order).to(device)
    emb = embeddings.index_select(0, order_t)  # (rows, c')
    values = torch.from_numpy(value_array[order]).to(device)  # (rows,)
    kind = attrs[order] * 2 + is_candidate[order]  # 2a: queries of type a, 2a + 1: its candidates
    bounds = np.searchsorted(kind, np.arange(2 * len(attribute_names) + 1))
    per_type, all_chance, names = [], [], []
    for a, name in enumerate(attribute_names):
        q = slice(bounds[2 * a], bounds[2 * a + 1])
        c = slice(bounds[2 * a + 1], bounds[2 * a + 2])
        if q.stop == q.start:
            continue
        per_type.append(average_precisions_on_device(emb[q], values[q], emb[c], values[c], chunk_size))
        q_values, c_values = value_array[order[q]], value_array[order[c]]
        per_value = np.bincount(c_values, minlength=int(q_values.max()) + 1)  # candidates per value
        all_chance.append(random_ranking_ap(per_value[q_values], c.stop - c.start))
        names.append(name)
    if not per_type:
        raise ValueError("the split has no queries")
    aps = torch.cat(per_type).cpu().numpy()  # the one wait for the device
    counts = [len(x) for x in all_chance]
    ap_by_type = np.split(aps, np.cumsum(counts)[:-1])
    per_attribute = {name: float(ap.mean()) for name, ap in zip(names, ap_by_type, strict=True)}
    chance = np.concatenate(all_chance)
    return {
        "map": float(aps.mean()),
        "map_chance": float(chance.mean()),
        "map_macro": float(np.mean(list(per_attribute.values()))),
        "map_per_attribute": per_attribute,
        "n_queries": int(len(aps)),
        "n_candidates": int(is_candidate.sum()),
        # One row per query in a fixed order (attribute, then table row): the paired samples of
        # the tables' significance test.
        "per_item": pd.DataFrame({"attribute": np.repeat(names, counts), "ap": aps, "chance_ap": chance}),
    }


def evaluate_retrieval(model: torch.nn.Module, table: pd.DataFrame, feed: Feed, split: str,
                       attribute_names: list[str], *, settings: EmbedSettings, chunk_size: int) -> dict:
    rows = table[table["split"] == split].reset_index(drop=True)
    emb = embed(model, feed, rows["entry"].to_numpy(), rows["attribute_index"].to_numpy(), settings,
                desc=f"embed {split}")
    return score_split(emb, rows, attribute_names, chunk_size)
