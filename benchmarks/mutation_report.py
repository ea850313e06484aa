"""The mutation score per module from mutmut's results (``make mutation`` writes them under
mutants/): killed, timed out, survived, no tests, not checked; the score is (killed + timeout) /
(killed + timeout + survived), counting only the mutants `make mutation` selects.

    python benchmarks/mutation_report.py            # a Markdown table on stdout
    python benchmarks/mutation_report.py --survivors  # and every surviving mutant's name
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import json
from pathlib import Path

#: The mutants `make mutation` runs (MUTANTS in the Makefile): the method's core.
SELECTED = ("agman.metrics.*", "agman.losses.*", "agman.data.triplets.*", "agman.evaluation.*", "agman.models.*",
            "agman.training.loop.x_start_from__mutmut_*", "agman.training.loop.x_improves__mutmut_*")
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", None: "not checked", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout"}


def tally(root: Path) -> tuple[dict[str, collections.Counter], list[str]]:
    per_module: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    survivors = []
    for meta in sorted(root.glob("agman/**/*.py.meta")):
        module = ".".join(meta.relative_to(root).with_suffix("").with_suffix("").parts)
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if not any(fnmatch.fnmatch(name, pattern) for pattern in SELECTED):
                continue
            status = STATUS.get(code, "suspicious")
            per_module[module][status] += 1
            if status == "survived":
                survivors.append(name)
    return per_module, survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--survivors", action="store_true")
    args = parser.parse_args()
    per_module, survivors = tally(args.mutants)
    print("| module | mutants | killed | timeout | survived | no tests | score |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    total = collections.Counter()
    for module, counts in sorted(per_module.items()):
        total.update(counts)
        judged = counts["killed"] + counts["timeout"] + counts["survived"]
        score = f"{100 * (counts['killed'] + counts['timeout']) / judged:.1f}%" if judged else "-"
        print(f"| {module} | {sum(counts.values())} | {counts['killed']} | {counts['timeout']} | {counts['survived']} "
              f"| {counts['no tests']} | {score} |")
    judged = total["killed"] + total["timeout"] + total["survived"]
    if judged:
        print(f"| all | {sum(total.values())} | {total['killed']} | {total['timeout']} | {total['survived']} "
              f"| {total['no tests']} | {100 * (total['killed'] + total['timeout']) / judged:.1f}% |")
    if total["not checked"]:
        print(f"\n{total['not checked']} selected mutants not checked yet.")
    if args.survivors:
        print("\n" + "\n".join(survivors))


if __name__ == "__main__":
    main()
