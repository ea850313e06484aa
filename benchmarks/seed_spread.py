"""The demo's headline comparisons over training seeds: how far AG-MAN and the baselines of Tables
2-4 move when only ``train.seed`` changes, and whether AG-MAN's lead over the best baseline holds.

Runs the pipeline's stages (``python -m stages.<stage>``, as dvc.yaml does) in a scratch project
folder whose ``params.yaml`` is the repository's with ``train.seeds`` set to ``--seeds``: the data
stages once per slot (the split and the triplets do not depend on the training seed), then
``cell@<slot>-<method>`` for each slot and method (``--methods``; AG-MAN and every baseline by
default; each cell trains and evaluates every seed, about a minute per seed on 2 cores). It reads
each seed's test metric (MAP, or triplet accuracy on Zappos50k) from ``reports/cells/`` and
reports, per slot: each method's mean, sample standard deviation, minimum and maximum over seeds,
and AG-MAN minus each baseline per seed. Seed 0 is also compared with the committed
``reports/cells/``: on the machine that made them it should match to the last digit.

    python benchmarks/seed_spread.py --work /tmp/agman-seeds --seeds 0 1 2 3 4
    python benchmarks/seed_spread.py --work /tmp/agman-seeds --seeds 0 1 2 \
        --methods fashionai=agman,csn deepfashion=agman,asenet_v2 zappos=agman,attnfashion
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import common
import yaml
from real_scale import run_stage

from agman.experiments import BASELINES, SLOTS  # noqa: E402 (common puts the repository first on sys.path)

METHODS = ("agman", *BASELINES)  # the rows of Tables 2-4
HEADLINE = {slot: spec.task.headline for slot, spec in SLOTS.items()}


def write_params(work: Path, seeds: list[int], profile: str) -> None:
    params = yaml.safe_load((common.ROOT / "params.yaml").read_text())
    params["train"]["seeds"] = seeds
    params["profile"] = profile
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def summarise(scores: dict[str, dict[str, list[float]]]) -> dict:
    """Per slot: each method's spread over seeds, and AG-MAN minus each baseline run, seed by seed."""
    out = {}
    for slot, methods in scores.items():
        baselines = [m for m in methods if m != "agman"]
        best = max(baselines, key=lambda m: statistics.fmean(methods[m]))  # best by mean over seeds
        differences = {m: [a - b for a, b in zip(methods["agman"], methods[m], strict=True)] for m in baselines}
        out[slot] = {
            "metric": HEADLINE[slot],
            "methods": {m: {"per_seed": v, **spread(v)} for m, v in methods.items()},
            "best_baseline_by_mean": best,
            "agman_minus": {m: {"per_seed": d, **spread(d), "seeds_agman_ahead": sum(x > 0 for x in d)}
                            for m, d in differences.items()},
            "agman_first_in_seeds": sum(
                all(methods["agman"][i] > methods[m][i] for m in baselines) for i in range(len(methods["agman"]))),
        }
    return out


def print_table(summary: dict, seeds: list[int]) -> None:
    print(f"\n{len(seeds)} seeds; test metric x 100: mean +- sample std [min, max]")
    for slot, s in summary.items():
        print(f"\n{slot} ({s['metric']})")
        for m, v in s["methods"].items():
            print(f"  {m:12s} {100 * v['mean']:6.2f} +- {100 * v['std']:5.2f}  "
                  f"[{100 * v['min']:6.2f}, {100 * v['max']:6.2f}]")
        for m, d in s["agman_minus"].items():
            mark = "  (best baseline by mean)" if m == s["best_baseline_by_mean"] else ""
            print(f"  agman - {m:12s} {100 * d['mean']:+6.2f} +- {100 * d['std']:5.2f}, ahead in "
                  f"{d['seeds_agman_ahead']} of {len(seeds)} seeds{mark}")
        print(f"  AG-MAN above every baseline run in {s['agman_first_in_seeds']} of {len(seeds)} seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch project folder (replaced)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--methods", nargs="*", default=[], metavar="SLOT=M1,M2",
                        help="the methods to run for a slot (default: agman and the three baselines)")
    parser.add_argument("--out", type=Path, default=common.ROOT / "benchmarks" / "results" / "seed_spread.json")
    args = parser.parse_args()

    methods = {slot: list(METHODS) for slot in SLOTS}
    for item in args.methods:
        slot, _, names = item.partition("=")
        methods[slot] = names.split(",")
        if slot not in SLOTS or "agman" not in methods[slot] or not set(methods[slot]) <= set(METHODS):
            raise SystemExit(f"--methods {item}: expected <slot>=agman,<baseline>... with a slot of {tuple(SLOTS)} "
                             f"and methods of {METHODS}")
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    write_params(args.work, args.seeds, args.profile)
    report = {"machine": common.machine(), "profile": args.profile, "seeds": args.seeds, "methods": methods,
              "stages": {}}

    def run(*stage: str) -> None:
        report["stages"].setdefault(" ".join(stage), run_stage(args.work, ["-m", *stage], None)[0])

    run("stages.resolve")
    for slot in SLOTS:
        for stage in ("download", "prepare", "cache", "triplets"):
            run(f"stages.{stage}", slot)
    for slot in SLOTS:
        for method in methods[slot]:
            print(f"cell@{slot}-{method}", json.dumps(run("stages.cell", f"{slot}-{method}")), flush=True)

    scores, committed = {}, {}
    for slot in SLOTS:
        for method in methods[slot]:
            cell = Path("reports", "cells", slot, method)
            rows = [json.loads((args.work / cell / f"seed{k}" / "metrics.json").read_text()) for k in args.seeds]
            scores.setdefault(slot, {})[method] = [row[HEADLINE[slot]] for row in rows]
            if 0 in args.seeds and (common.ROOT / cell / "seed0" / "metrics.json").is_file():
                committed[f"{slot}-{method}"] = ((args.work / cell / "seed0" / "metrics.json").read_bytes()
                                                 == (common.ROOT / cell / "seed0" / "metrics.json").read_bytes())
    report["summary"] = summarise(scores)
    report["seed0_matches_committed_reports"] = committed
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print_table(report["summary"], args.seeds)
    print("\nseed 0 byte-identical to the committed reports:", committed)
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
