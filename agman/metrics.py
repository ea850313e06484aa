"""Retrieval metrics: pure functions, arrays in, numbers out (REFERENCE.md section 3).

``mean_average_precision`` scores attribute-specific retrieval (FashionAI, DeepFashion);
``triplet_relation`` scores triplet relation prediction (Zappos50k).

Average precision over the FULL ranking of the candidates, as ASEN computes it:

    AP(q) = (1 / R) * sum_{k : c_k relevant} (number of relevant items in the top k) / k

where c_1..c_N are the candidates sorted by decreasing cosine similarity to q and R is the
number of relevant candidates (same value as q). A query with R = 0 scores 0 and still counts.
MAP is the mean AP over the queries.

Ties: candidates with equal similarity keep their input order (a stable sort), so the result
is deterministic and does not depend on the device.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x, dtype=None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.require(np.asarray(x), requirements=["C", "W"]))
    return t if dtype is None else t.to(dtype)


@torch.no_grad()
def average_precisions(query_emb, query_labels, cand_emb, cand_labels, chunk_size: int = 1024) -> np.ndarray:
    """AP of each query, float64 array of shape (Q,).

    Embeddings are (Q, D) and (N, D), L2-normalised (the dot product is the cosine similarity);
    labels are integer values of one attribute type. Queries are ranked ``chunk_size`` at a
    time, so memory stays O(chunk_size * N). Runs on the device the embeddings are on.
    """
    q = _as_tensor(query_emb)
    c = _as_tensor(cand_emb).to(q.device, q.dtype)
    ql = _as_tensor(query_labels).to(q.device)
    cl = _as_tensor(cand_labels).to(q.device)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"embeddings must be (Q, D) and (N, D), got {tuple(q.shape)} and {tuple(c.shape)}")
    if len(ql) != len(q) or len(cl) != len(c):
        raise ValueError("one label per embedding is required")
    n = c.shape[0]
    ranks = torch.arange(1, n + 1, device=q.device, dtype=torch.float64)  # (N,)
    out = []
    for start in range(0, q.shape[0], chunk_size):
        sim = q[start:start + chunk_size] @ c.T  # (B, N)
        order = torch.sort(sim, dim=1, descending=True, stable=True).indices  # (B, N)
        rel = cl[order] == ql[start:start + chunk_size, None]  # (B, N) relevance in rank order
        hits = rel.cumsum(dim=1, dtype=torch.float64)  # (B, N) relevant items in the top k
        n_rel = hits[:, -1] if n else torch.zeros(rel.shape[0], dtype=torch.float64, device=q.device)
        precision_sum = torch.where(rel, hits / ranks, 0.0).sum(dim=1)  # (B,)
        out.append(torch.where(n_rel > 0, precision_sum / n_rel.clamp(min=1), 0.0))
    if not out:
        return np.zeros(0)
    return torch.cat(out).cpu().numpy()


def mean_average_precision(query_emb, query_labels, cand_emb, cand_labels, chunk_size: int = 1024) -> float:
    """MAP = mean over queries of AP (see the module docstring); 0.0 for no queries."""
    ap = average_precisions(query_emb, query_labels, cand_emb, cand_labels, chunk_size)
    return float(ap.mean()) if len(ap) else 0.0


@torch.no_grad()
def triplet_relation(anchor_emb, close_emb, far_emb, margin: float = 0.2) -> dict[str, float]:
    """Triplet relation prediction (Zappos50k, Sec. IV-A2, Table 4).

    With s the cosine similarity of L2-normalised embeddings (rows aligned, (T, D) each):

        accuracy     = mean_t [ s(a_t, close_t) > s(a_t, far_t) ]        (strict: ties are wrong)
        average_loss = mean_t max(0, m + s(a_t, far_t) - s(a_t, close_t))

    ``average_loss`` is the triplet ranking loss of Eq. 8 on the test triplets.
    """
    correct, loss = triplet_relation_per_item(anchor_emb, close_emb, far_emb, margin)
    return {"accuracy": float(correct.mean()), "average_loss": float(loss.mean())}


@torch.no_grad()
def triplet_relation_per_item(anchor_emb, close_emb, far_emb, margin: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Per triplet t: ``correct_t = [s(a_t, close_t) > s(a_t, far_t)]`` (bool, (T,)) and
    ``loss_t = max(0, m + s(a_t, far_t) - s(a_t, close_t))`` (float64, (T,)); see ``triplet_relation``."""
    a, c, f = (_as_tensor(x).to(torch.float64) for x in (anchor_emb, close_emb, far_emb))
    if not a.shape == c.shape == f.shape or a.ndim != 2:
        raise ValueError(f"anchor, close and far must be (T, D) alike, got {tuple(a.shape)}, {tuple(c.shape)}, "
                         f"{tuple(f.shape)}")
    if len(a) == 0:
        raise ValueError("no triplets")
    s_close = (a * c).sum(dim=1)  # (T,)
    s_far = (a * f).sum(dim=1)  # (T,)
    return (s_close > s_far).cpu().numpy(), torch.clamp(margin + s_far - s_close, min=0).cpu().numpy()
