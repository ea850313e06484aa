"""Retrieval metrics: pure functions, arrays in, numbers out (docs/evaluation.md).

``mean_average_precision`` scores attribute-specific retrieval (FashionAI, DeepFashion) and
``random_ranking_ap`` is its chance level; ``triplet_relation`` scores triplet relation
prediction (Zappos50k).

Average precision over the FULL ranking of the candidates, as ASEN computes it:

    AP(q) = (1 / R) * sum_{k : c_k relevant} (number of relevant items in the top k) / k

where c_1..c_N are the candidates sorted by decreasing cosine similarity to q and R is the
number of relevant candidates (same value as q). A query with R = 0 scores 0 and still counts.
MAP is the mean AP over the queries.

Ties: candidates with equal similarity keep their input order (a stable sort), so the result
is deterministic and does not depend on the device.

Precision: every function computes in its inputs' own dtype with autocast switched off, so a
caller's bf16/fp16 autocast region (the model's forward) cannot round the similarities to 8
significant bits, where trained embeddings that cluster would tie and reorder.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.require(np.asarray(x), requirements=["C", "W"]))


def average_precisions(query_emb, query_labels, cand_emb, cand_labels, chunk_size: int = 1024) -> np.ndarray:
    """AP of each query, float64 array of shape (Q,).

    Embeddings are (Q, D) and (N, D), L2-normalised (the dot product is the cosine similarity);
    labels are integer values of one attribute type. Queries are ranked ``chunk_size`` at a
    time, so memory stays O(chunk_size * N). Runs on the device the embeddings are on: on a GPU
    the similarities, the sort and the APs stay there and only the (Q,) APs are copied back.
    """
    return average_precisions_on_device(query_emb, query_labels, cand_emb, cand_labels, chunk_size).cpu().numpy()


def average_precisions_on_device(query_emb, query_labels, cand_emb, cand_labels,
                                 chunk_size: int = 1024) -> torch.Tensor:
    """``average_precisions`` as a (Q,) float64 tensor on the embeddings' device: on a GPU nothing
    waits for the device, so a caller scoring several sets copies the APs back once."""
    with torch.no_grad():  # a decorator would hide the body from mutation testing
        q = _as_tensor(query_emb)
        if q.dtype in (torch.float16, torch.bfloat16):  # scored in float32: 8-11 bits would tie most pairs
            q = q.float()
        c = _as_tensor(cand_emb).to(q.device, q.dtype)
        ql = _as_tensor(query_labels).to(q.device)
        cl = _as_tensor(cand_labels).to(q.device)
        if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
            raise ValueError(f"embeddings must be (Q, D) and (N, D), got {tuple(q.shape)} and {tuple(c.shape)}")
        if len(ql) != len(q) or len(cl) != len(c):
            raise ValueError("one label per embedding is required")
        if len(q) == 0 or len(c) == 0:
            return torch.zeros(len(q), dtype=torch.float64, device=q.device)
        out = []
        for start in range(0, q.shape[0], chunk_size):
            with torch.autocast(q.device.type, enabled=False):  # exact in the embeddings' dtype
                sim = q[start:start + chunk_size] @ c.T  # (B, N)
            rel = cl[None, :] == ql[start:start + chunk_size, None]  # (B, N) relevance in candidate order
            if sim.device.type == "cpu":
                out.append(torch.from_numpy(_average_precisions_cpu(sim, rel)))
            else:
                out.append(_average_precisions_sorted(sim, rel))
        return torch.cat(out)


def _average_precisions_sorted(sim: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
    """APs (B,) float64 of similarity rows ``sim`` (B, N) with relevance ``rel`` (B, N), on their
    device: a stable descending sort (ties keep candidate order), then precision at each hit."""
    n = sim.shape[1]
    order = _rank_order(sim)  # (B, N)
    rel = torch.gather(rel, 1, order)  # (B, N) relevance in rank order
    hits = rel.cumsum(dim=1, dtype=torch.float64)  # (B, N) relevant items in the top k
    n_rel = hits[:, -1]  # (B,)
    ranks = torch.arange(1, n + 1, device=sim.device, dtype=torch.float64)  # (N,)
    precision_sum = torch.where(rel, hits / ranks, 0.0).sum(dim=1)  # (B,)
    return torch.where(n_rel > 0, precision_sum / n_rel.clamp(min=1), 0.0)


def _rank_order(sim: torch.Tensor) -> torch.Tensor:
    """(B, N) candidate indices by decreasing similarity, ties in candidate order: a stable sort.

    float32 similarities become unique int64 keys, the float's bits remapped so that integer
    order is descending similarity order, above the candidate index: an unstable sort of unique
    keys is the stable sort, and on a GPU an unstable sort of rows up to 4,096 long runs in
    shared memory, where a stable one takes the segmented radix sort (FashionAI's types have
    ~1,800 candidates). NaN ranks last. Other dtypes (float64) take the stable sort itself.
    """
    if sim.dtype != torch.float32:
        return torch.sort(sim, dim=1, descending=True, stable=True).indices
    bits = (-sim + 0.0).view(torch.int32)  # descending; + 0.0 makes -0.0 and +0.0 one key
    bits = torch.where(bits < 0, bits ^ 0x7FFF_FFFF, bits)  # two's-complement order == float order
    keys = (bits.to(torch.int64) << 32) | torch.arange(sim.shape[1], device=sim.device)  # (B, N) unique
    return torch.sort(keys, dim=1).values & 0xFFFF_FFFF


_FLIP = np.int64(0x7FFF_FFFF_FFFF_FFFF)


def _average_precisions_cpu(sim: torch.Tensor, rel: torch.Tensor) -> np.ndarray:
    """Same values as ``_average_precisions_sorted``, several times faster on a CPU.

    torch's CPU sort of a (B, N) float64 matrix with indices is several times slower than
    numpy's vectorised sort of int64 values (benchmarks/eval_map.py times both paths), and only
    the relevance in rank order is needed, not the order itself. So each similarity becomes one
    int64 key: the float's bits remapped so that
    integer order is float order (negated, for a descending ranking), shifted left one bit, with
    the relevance in bit 0. Sorting the keys alone then yields the relevance in rank order. This
    holds while |sim| < 2 (the shift cannot overflow; cosine similarities are in [-1, 1]); rows
    where two similarities are equal fall back to the stable sort, since a value-only sort
    orders ties by the relevance bit rather than by candidate index.
    """
    s = sim.numpy().astype(np.float64, copy=False)  # float32 -> float64 is exact and keeps order
    r = rel.numpy()
    if not np.abs(s).max() < 2:  # also catches NaN
        return _average_precisions_sorted(sim, rel).numpy()
    keys = (-s + 0.0).view(np.int64)  # + 0.0 turns -0.0 into +0.0, so equal floats give equal keys
    keys = np.where(keys < 0, keys ^ _FLIP, keys)  # two's-complement order == float order
    keys <<= 1
    keys |= r
    keys.sort(axis=1)  # ascending key = descending similarity; not stable, ties handled below
    rel_ranked = (keys & 1).astype(bool)  # (B, N)
    keys >>= 1
    tied = (keys[:, 1:] == keys[:, :-1]).any(axis=1)  # (B,) rows with equal similarities
    n_rel = rel_ranked.sum(axis=1)  # (B,)
    rows, cols = np.nonzero(rel_ranked)  # hits, row by row, in rank order
    hit_index = np.arange(1, len(rows) + 1) - np.repeat(np.cumsum(n_rel) - n_rel, n_rel)  # hits in the top k
    # bincount adds each row's precisions in rank order, as the plain loop over the ranking does.
    precision_sum = np.bincount(rows, weights=hit_index / (cols + 1), minlength=len(s))
    ap = np.where(n_rel > 0, precision_sum / np.maximum(n_rel, 1), 0.0)
    if tied.any():
        ap[tied] = _average_precisions_sorted(sim[torch.from_numpy(tied)], rel[torch.from_numpy(tied)]).numpy()
    return ap


def mean_average_precision(query_emb, query_labels, cand_emb, cand_labels, chunk_size: int = 1024) -> float:
    """MAP = mean over queries of AP (see the module docstring); 0.0 for no queries."""
    ap = average_precisions(query_emb, query_labels, cand_emb, cand_labels, chunk_size)
    return float(ap.mean()) if len(ap) else 0.0


def random_ranking_ap(n_relevant, n_candidates) -> np.ndarray:
    """Expected AP of a uniformly random ranking: the chance level of each query, float64.

    With N candidates of which R are relevant (R >= 1), and H_N = 1 + 1/2 + ... + 1/N,

        E[AP] = H_N / N + (R - 1) / (N - 1) * (1 - H_N / N)          (R = 1: H_N / N)

    since AP = (1/R) sum_{j relevant} (1/pos_j) sum_{l relevant} [pos_l <= pos_j]: the term l = j
    has E[1/pos_j] = H_N / N, and each of the R - 1 others is above j with probability
    (pos_j - 1) / (N - 1), giving E[(pos_j - 1) / ((N - 1) pos_j)] = (1 - H_N / N) / (N - 1).
    R = 0 scores 0, as in ``average_precisions``. Inputs broadcast; R <= N is required.
    """
    r = np.asarray(n_relevant, dtype=np.int64)
    n = np.asarray(n_candidates, dtype=np.int64)
    if np.any(r < 0) or np.any(r > n):
        raise ValueError("need 0 <= n_relevant <= n_candidates")
    n_safe = np.maximum(n, 1)
    harmonic = np.cumsum(1.0 / np.arange(1, int(n_safe.max(initial=1)) + 1))[n_safe - 1]  # H_N
    first = harmonic / n_safe
    others = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0) * (1.0 - first)
    return np.where(r > 0, first + others, 0.0)


def triplet_relation(anchor_emb, close_emb, far_emb, margin: float = 0.2) -> dict[str, float]:
    """Triplet relation prediction (Zappos50k, Sec. IV-A2, Table 4).

    With s the cosine similarity of L2-normalised embeddings (rows aligned, (T, D) each):

        accuracy     = mean_t [ s(a_t, close_t) > s(a_t, far_t) ]        (strict: ties are wrong)
        average_loss = mean_t max(0, m + s(a_t, far_t) - s(a_t, close_t))

    ``average_loss`` is the triplet ranking loss of Eq. 8 on the test triplets.
    """
    with torch.no_grad():  # a decorator would hide the body from mutation testing
        correct, loss = triplet_relation_per_item(anchor_emb, close_emb, far_emb, margin)
        return {"accuracy": float(correct.mean()), "average_loss": float(loss.mean())}


def triplet_relation_per_item(anchor_emb, close_emb, far_emb, margin: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Per triplet t: ``correct_t = [s(a_t, close_t) > s(a_t, far_t)]`` (bool, (T,)) and
    ``loss_t = max(0, m + s(a_t, far_t) - s(a_t, close_t))`` (float64, (T,)); see ``triplet_relation``."""
    with torch.no_grad():  # a decorator would hide the body from mutation testing
        a, c, f = (_as_tensor(x).to(torch.float64) for x in (anchor_emb, close_emb, far_emb))
        if not a.shape == c.shape == f.shape or a.ndim != 2:
            raise ValueError(f"anchor, close and far must be (T, D) alike, got {tuple(a.shape)}, {tuple(c.shape)}, "
                             f"{tuple(f.shape)}")
        if len(a) == 0:
            raise ValueError("no triplets")
        with torch.autocast(a.device.type, enabled=False):  # float64, whatever region the caller is in
            s_close = (a * c).sum(dim=1)  # (T,)
            s_far = (a * f).sum(dim=1)  # (T,)
        return (s_close > s_far).cpu().numpy(), torch.clamp(margin + s_far - s_close, min=0).cpu().numpy()
