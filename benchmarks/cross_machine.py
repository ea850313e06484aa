"""Do the ci profile's numbers hold on this CPU? Reruns one cell per table slot under
``train.portable`` and compares, bit for bit, with every committed reference in
``benchmarks/results/cross_machine/`` (one file per CPU type): each cell's test metrics, a
SHA-256 of its best checkpoint's weights, and one of the data it trained on (cached images and
triplet files), which tells a difference made before training from one made in it.

    .venv/bin/python benchmarks/cross_machine.py            # compare; exit status 1 if anything differs
    .venv/bin/python benchmarks/cross_machine.py --write    # also write this CPU type's reference

The cells run through the real stages (``python -m stages.<stage>``) in a temporary copy of the
code, on the CPU, under the ci profile; a few minutes on 2 cores. A reference made by other code
differs too: rerun on a machine that made one first (docs/cross-machine.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, cpu_model, machine  # first: puts the repo root first on sys.path

import torch
import yaml

from agman import portable
from agman.pipeline.layout import CellPaths, SlotPaths
from agman.training.checkpoint import BEST_CHECKPOINT, load_checkpoint

CELLS = {"fashionai-agman": ("fashionai", "agman"), "deepfashion-agman": ("deepfashion", "agman"),
         "zappos-agman": ("zappos", "agman")}
RESULTS = ROOT / "benchmarks" / "results" / "cross_machine"
COPIED = ("agman", "stages", "params.yaml")


def cpu_id() -> dict:
    """The CPU type: /proc/cpuinfo's model name, family and model (a VM may show only "AMD EPYC")."""
    info = {"model_name": cpu_model()}
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines())
    except (OSError, ValueError):
        return info
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return {**info, "cpu_family": fields.get("cpu family", "x"), "model": fields.get("model", "x")}


def slug(cpu: dict) -> str:
    words = re.sub(r"\([^)]*\)", "", cpu["model_name"]).lower()
    name = "-".join(re.findall(r"[a-z0-9]+", words))
    return f"{name}-family{cpu.get('cpu_family', 'x')}-model{cpu.get('model', 'x')}"


def files_sha256(*folders: Path) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def weights_sha256(checkpoint: Path) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(load_checkpoint(checkpoint)["model"].items()):
        digest.update(name.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def project_copy(dest: Path) -> None:
    """The code and params.yaml under the ci profile, portable, on the CPU."""
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    for readme in ROOT.glob("data/raw/*/README.md"):  # the download stages want each slot's folder
        (dest / readme.relative_to(ROOT)).parent.mkdir(parents=True)
        shutil.copy2(readme, dest / readme.relative_to(ROOT))
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["profile"] = "ci"
    params["profiles"]["ci"].setdefault("train", {}).update(portable=True, device="cpu")
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def rerun(workdir: Path) -> dict:
    """Every stage the cells need, in order; each cell's numbers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_")) and k not in portable.ENV}
    env["DVC_ROOT"] = str(workdir)  # its MLflow runs go to the copy's own database
    slots = sorted({slot for slot, _ in CELLS.values()})
    commands = [[stage, slot] for slot in slots for stage in ("download", "prepare", "cache", "triplets")]
    commands += [["cell", cell] for cell in CELLS]
    for stage, key in commands:
        proc = subprocess.run([sys.executable, "-m", f"stages.{stage}", key], cwd=workdir, env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"stages.{stage} {key} failed:\n{proc.stderr[-3000:]}")
    out = {}
    for cell, (slot, variant) in CELLS.items():
        paths, data = CellPaths(slot, variant), SlotPaths(slot)
        out[cell] = {
            "metrics": json.loads((workdir / paths.metrics).read_text()),
            "best_weights_sha256": weights_sha256(workdir / paths.run(0) / BEST_CHECKPOINT),
            "data_sha256": files_sha256(workdir / data.cache, workdir / data.triplets),
        }
    return out


def differences(cells: dict, reference: dict) -> list[str]:
    """What differs from a reference, one line per cell and field; empty when bit-identical."""
    lines = []
    for cell, ours in cells.items():
        theirs = reference["cells"].get(cell)
        if theirs is None:
            lines.append(f"{cell}: not in the reference")
            continue
        for field in ("data_sha256", "best_weights_sha256"):
            if ours[field] != theirs[field]:
                lines.append(f"{cell}: {field} differs")
        for key in sorted(set(ours["metrics"]) | set(theirs["metrics"])):
            if ours["metrics"].get(key) != theirs["metrics"].get(key):
                lines.append(f"{cell}: {key} {theirs['metrics'].get(key)!r} there, {ours['metrics'].get(key)!r} here")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write this CPU type's reference file")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the reference files")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agman-cross-machine-") as tmp:
        project_copy(Path(tmp))
        cells = rerun(Path(tmp))
    cpu = cpu_id()
    result = {"cpu": cpu, "uncapped_aten_capability": torch.backends.cpu.get_cpu_capability(),
              "machine": {k: v for k, v in machine().items() if k != "load_average_1_5_15min"},
              "portable": {"env": portable.ENV, "threads": portable.THREADS}, "cells": cells}
    own = args.results / f"{slug(cpu)}.json"
    report = {path.name: differences(cells, json.loads(path.read_text())) for path in sorted(args.results.glob("*.json"))}
    if args.write:
        own.parent.mkdir(parents=True, exist_ok=True)
        own.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"this_cpu": cpu, "wrote": str(own) if args.write else None, "cells": cells,
                      "differences_by_reference": report}, indent=2))
    for name, lines in report.items():
        print(f"{name}: {'bit-identical' if not lines else f'{len(lines)} differences'}", file=sys.stderr)
    return 1 if any(report.values()) or not (report or args.write) else 0


if __name__ == "__main__":
    sys.exit(main())
