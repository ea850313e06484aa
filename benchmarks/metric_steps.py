"""The smallest move of the ci profile's test metrics that a change of one result makes: one
adjacent swap in one query's ranking (a relevant candidate passing an irrelevant one) for the
MAPs, one triplet for the accuracies. A tolerance for golden values must stay below these.

    .venv/bin/python benchmarks/metric_steps.py

Swapping a relevant candidate at rank k + 1 with the irrelevant one at rank k changes that
query's AP by r / (R k (k + 1)) (R relevant candidates, r of them at rank k or above after the
swap), and nothing else; the smallest over every k and r the query's R and candidate count
allow, divided by the queries each MAP averages over, is printed. Builds the ci data of the
retrieval slots in a temporary copy of the code, as ``benchmarks/cross_machine.py`` does.
"""

from __future__ import annotations

import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path

from common import machine  # first: puts the repo root first on sys.path
from cross_machine import prepare_slot, project_copy

SLOTS = ("fashionai", "deepfashion")
#: Zappos50k's test triplets in the ci profile: all of them, and per condition (its metrics file).
ZAPPOS_TRIPLETS = {"accuracy": 80, "per_condition/*/accuracy": 20}


def smallest_swap(n: int, relevant: int) -> Fraction | None:
    """The smallest change of one query's AP by one adjacent swap; None when no swap changes it."""
    best = None
    for k in range(1, n):  # the relevant candidate moves from rank k + 1 to rank k
        for r in range(1, relevant + 1):  # relevant candidates at rank k or above after the swap
            if r - 1 > k - 1 or relevant - r > n - k - 1:
                continue
            step = Fraction(r, relevant * k * (k + 1))
            best = step if best is None else min(best, step)
    return best


def steps(table, attributes: list[str]) -> dict:
    """Per metric of one slot's test split, the smallest move of one swap; the split's sizes."""
    test = table[table["split"] == "test"]
    queries = test[test["role"] == "query"]
    types = [a for a in sorted(test["attribute_index"].unique()) if (queries["attribute_index"] == a).any()]
    smallest = {"map": None, "map_macro": None, "map_per_attribute": None}
    sizes = {}
    for a in types:
        q = queries[queries["attribute_index"] == a]
        c = test[(test["attribute_index"] == a) & (test["role"] == "candidate")]
        sizes[attributes[a]] = {"queries": len(q), "candidates": len(c)}
        for value in q["value"]:
            step = smallest_swap(len(c), int((c["value"] == value).sum()))
            if step is None:
                continue
            for key, over in (("map", len(queries)), ("map_macro", len(q) * len(types)), ("map_per_attribute", len(q))):
                smallest[key] = step / over if smallest[key] is None else min(smallest[key], step / over)
    return {"queries": len(queries), "per_attribute": sizes,
            "smallest_swap_move": {k: float(v) for k, v in smallest.items() if v is not None}}


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="agman-metric-steps-") as tmp:
        work = Path(tmp)
        project_copy(work)
        for slot in SLOTS:
            prepare_slot(work, slot)
        from agman.pipeline.cache import load_cached

        here = Path.cwd()
        os.chdir(work)  # the slot paths are relative to the project
        try:
            slots = {slot: steps(data.table, data.attributes) for slot in SLOTS for data in [load_cached(slot)]}
        finally:
            os.chdir(here)
    result = {"machine": machine(), "profile": "ci", "retrieval": slots,
              "zappos_one_triplet": {k: 1 / n for k, n in ZAPPOS_TRIPLETS.items()}}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
