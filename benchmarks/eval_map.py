"""Exact MAP at the real test sizes: agman.metrics.average_precisions vs the straightforward loop.

Test sets as docs/evaluation.md describes them: FashionAI 3,600 queries / 14,400 candidates
over 8 attribute types (ASEN's per-type query counts, candidates 4x each); DeepFashion ~5,800
queries / ~23,000 candidates over 5 types (split evenly: the per-type counts are not published).
Embeddings are 1024-d random unit vectors with a seeded label structure (each value of a type has
a centre; an item is its value's centre plus noise), in float64 on both sides.

The reference is the plain way, per query: score the candidates (one mat-vec), argsort them,
then a Python loop over the ranking adding hits/k at each relevant rank. It is timed on a seeded
subset of the queries (per type, in proportion) and scaled per query to the full set
(``reference_extrapolated_from``); the APs of that subset are compared with ours. The
evaluation's whole scoring of the split (``score_split``, from float32 embeddings) is also timed
against the bare work on the same matrices: one similarity matmul per type and a full argsort.

    python benchmarks/eval_map.py                      # the real sizes, ~5 minutes on 2 cores
    python benchmarks/eval_map.py --scale 0.02 --dim 32 --reference-queries 20 --repeats 1   # toy
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import common  # noqa: F401  (puts the repo root first on sys.path)
import numpy as np
import pandas as pd
import torch

from agman.evaluation.retrieval import score_split
from agman.metrics import _average_precisions_sorted, average_precisions

# Per attribute type: (queries, values). Candidates are 4x the queries (the 1:4 split).
DATASETS = {
    # ASEN's FashionAI test split; values per task as in the data (docs/datasets.md).
    "fashionai": [(422, 6), (623, 9), (535, 8), (422, 6), (341, 5), (289, 5), (703, 10), (265, 5)],
    # DeepFashion: ~5,800 queries over texture, fabric, shape, part, style, split evenly; a few
    # values per type (the work of either method does not depend on how many).
    "deepfashion": [(1160, 6)] * 5,
}
CENTRE_NORM = 0.25  # length of a value's centre against unit-variance noise: MAP ~0.5-0.9


def make_type(rng: np.random.Generator, n_queries: int, n_values: int, dim: int):
    """Queries (Q, D), their values (Q,), candidates (4Q, D), their values (4Q,); float64, unit rows."""
    centres = rng.normal(size=(n_values, dim))
    centres *= CENTRE_NORM / np.linalg.norm(centres, axis=1, keepdims=True)
    share = rng.dirichlet(np.full(n_values, 2.0))  # unequal value frequencies

    def items(n):
        labels = rng.choice(n_values, size=n, p=share)
        emb = centres[labels] + rng.normal(size=(n, dim)) / np.sqrt(dim)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True), labels

    q, ql = items(n_queries)
    c, cl = items(4 * n_queries)
    return q, ql, c, cl


def reference_average_precisions(q, ql, c, cl, phases: dict | None = None) -> np.ndarray:
    """The plain loop; ``phases`` (if given) accumulates seconds spent scoring, sorting, looping."""
    aps = np.zeros(len(q))
    clock = time.perf_counter
    for i in range(len(q)):
        t0 = clock()
        scores = c @ q[i]  # (N,)
        t1 = clock()
        ranking = np.argsort(-scores, kind="stable")  # ties keep candidate order, as ours
        t2 = clock()
        hits, total = 0, 0.0
        for k, j in enumerate(ranking, start=1):
            if cl[j] == ql[i]:
                hits += 1
                total += hits / k
        aps[i] = total / hits if hits else 0.0
        if phases is not None:
            phases["score"] += t1 - t0
            phases["argsort"] += t2 - t1
            phases["loop"] += clock() - t2
    return aps


def run_dataset(name: str, types, args, device: torch.device) -> dict:
    rng = np.random.default_rng(args.seed)
    data = []
    for n_q, n_v in types:
        n_q = max(2, round(n_q * args.scale))
        data.append(make_type(rng, n_q, n_v, args.dim))
    n_queries = sum(len(d[0]) for d in data)
    on_device = [tuple(torch.from_numpy(x).to(device) for x in d) for d in data]
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    def ours():
        return [average_precisions(*d, chunk_size=args.chunk_size) for d in on_device]

    def similarity_only():  # the float64 GEMM that ours cannot avoid: its floor
        return [q @ c.T for q, _, c, _ in on_device]

    def torch_stable_sort():  # the ranking as on a GPU (and on CPU before the key sort)
        return [_average_precisions_sorted(q @ c.T, cl[None, :] == ql[:, None]) for q, ql, c, cl in on_device]

    # The evaluation's own scoring of a split (agman.evaluation.retrieval.score_split) from float32
    # embeddings, as the cell stage has them, against the bare work: one similarity matmul per
    # type and a full argsort of each row, on the same float32 matrices (and in float64).
    rows = [(t, role, v) for t, (q, ql, c, cl) in enumerate(data) for role, labels in (("query", ql), ("candidate", cl))
            for v in labels]
    table = pd.DataFrame(rows, columns=["attribute_index", "role", "value"])
    split_emb = torch.from_numpy(np.concatenate([x for q, _, c, _ in data for x in (q, c)])).float().to(device)
    names = [f"type{t}" for t in range(len(data))]
    as_float32 = [(q.float(), c.float()) for q, _, c, _ in on_device]

    def score_split_float32():
        return score_split(split_emb, table, names, chunk_size=args.chunk_size)

    def bare_matmul_argsort(pairs):
        return [torch.argsort(q @ c.T, dim=1, descending=True) for q, c in pairs]

    score_split_float32()  # warm-up
    split_s, _ = common.median_seconds(score_split_float32, args.repeats, sync)
    bare32_s, _ = common.median_seconds(lambda: bare_matmul_argsort(as_float32), args.repeats, sync)
    bare64_s, _ = common.median_seconds(lambda: bare_matmul_argsort([(q, c) for q, _, c, _ in on_device]),
                                        args.repeats, sync)

    ours()  # warm-up: thread pools, allocator
    ours_s, ours_all = common.median_seconds(ours, args.repeats, sync)
    gemm_s, _ = common.median_seconds(similarity_only, args.repeats, sync)
    torch_sort_s, _ = common.median_seconds(torch_stable_sort, args.repeats, sync)
    ours_ap = ours()

    # Peak memory of ours, in a separate untimed run.
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        ours()
        memory = {"cuda_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20}
    else:
        tracemalloc.start()
        with common.PeakRSS() as rss:
            ours()
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        memory = {"peak_rss_increase_mb": round(rss.increase_mb, 1),
                  "tracemalloc_peak_mb": round(traced_peak / 2**20, 1)}

    # Reference on a seeded subset of each type's queries, in proportion; scaled per query.
    sub_rng = np.random.default_rng(args.seed + 1)
    want = args.reference_queries if 0 < args.reference_queries < n_queries else n_queries
    subsets = [np.sort(sub_rng.choice(len(d[0]), size=max(1, round(want * len(d[0]) / n_queries)), replace=False))
               for d in data]
    q0, ql0, c0, cl0 = data[0]
    reference_average_precisions(q0[:2], ql0[:2], c0, cl0)  # warm-up
    estimates, ref_ap, phases = [], None, None
    for _ in range(args.repeats):
        phases = {"score": 0.0, "argsort": 0.0, "loop": 0.0}
        total, aps = 0.0, []
        for (q, ql, c, cl), idx in zip(data, subsets, strict=True):
            start = time.perf_counter()
            aps.append(reference_average_precisions(q[idx], ql[idx], c, cl, phases))
            total += (time.perf_counter() - start) * len(q) / len(idx)
        estimates.append(total)
        ref_ap = aps
    reference_s = float(np.median(estimates))
    timed = sum(len(i) for i in subsets)

    ours_sub = np.concatenate([a[i] for a, i in zip(ours_ap, subsets, strict=True)])
    ref_sub = np.concatenate(ref_ap)
    phase_total = sum(phases.values())
    return {
        "queries": n_queries,
        "candidates": sum(len(d[2]) for d in data),
        "attribute_types": len(data),
        "queries_per_type": [len(d[0]) for d in data],
        "candidates_per_type": [len(d[2]) for d in data],
        "values_per_type": [t[1] for t in types],
        "map_query_weighted": float(np.concatenate(ours_ap).mean()),
        "ours_seconds": ours_s,
        "ours_seconds_all_repeats": ours_all,
        "reference_seconds": reference_s,
        "reference_seconds_all_repeats": estimates,
        "reference_extrapolated_from": None if timed == n_queries else {
            "queries_timed": timed, "of": n_queries,
            "how": "seeded random subset per attribute type in proportion; each type's time scaled by "
                   "its queries / timed queries"},
        "reference_time_split": {k: round(v / phase_total, 3) for k, v in phases.items()},
        "speedup": reference_s / ours_s,
        "ours_similarity_gemm_seconds": gemm_s,
        "ceiling_speedup_if_ranking_were_free": reference_s / gemm_s,
        "ours_with_torch_stable_sort_seconds": torch_sort_s,
        # If the reference scored all queries in one matmul instead of one mat-vec per query:
        "reference_one_matmul_seconds_estimate": reference_s * (1 - phases["score"] / phase_total) + gemm_s,
        "max_abs_diff": float(np.abs(ours_sub - ref_sub).max()),
        "compared_queries": int(len(ref_sub)),
        "ours_memory": memory,
        "score_split_seconds": split_s,
        "bare_matmul_argsort_float32_seconds": bare32_s,
        "bare_matmul_argsort_float64_seconds": bare64_s,
        "score_split_vs_bare_float32": split_s / bare32_s,
        "score_split_vs_bare_float64": split_s / bare64_s,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every query count (toy runs)")
    parser.add_argument("--reference-queries", type=int, default=240,
                        help="queries the reference is timed on per dataset (0 = all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    result = {"benchmark": "eval_map", "args": vars(args), "machine": common.machine()}
    result["datasets"] = {name: run_dataset(name, DATASETS[name], args, device) for name in args.datasets}
    ref = sum(d["reference_seconds"] for d in result["datasets"].values())
    ours = sum(d["ours_seconds"] for d in result["datasets"].values())
    result["total"] = {"ours_seconds": ours, "reference_seconds": ref, "speedup": ref / ours,
                       "max_abs_diff": max(d["max_abs_diff"] for d in result["datasets"].values())}
    return common.report(result)


if __name__ == "__main__":
    main()
