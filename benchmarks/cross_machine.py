"""Do the ci profile's numbers hold on this CPU? Reruns one cell per table slot under
``train.portable`` and compares, bit for bit, with every committed reference in
``benchmarks/results/cross_machine/`` (one file per CPU type): each cell's test metrics, a
SHA-256 of its best checkpoint's weights, and one of the data it trained on (cached images and
triplet files), which tells a difference made before training from one made in it.

    .venv/bin/python benchmarks/cross_machine.py            # compare; exit status 1 if anything differs
    .venv/bin/python benchmarks/cross_machine.py --write    # also write this CPU type's reference
    .venv/bin/python benchmarks/cross_machine.py --conv aten --write    # the same with oneDNN and NNPACK off

The cells run through the real stages (``python -m stages.<stage>``) in a temporary copy of the
code, on the CPU, under the ci profile; a few minutes on 2 cores. A reference made by other code
differs too, so each reference records the commit its code came from, and the report names it
and says whether the code copied here differs from it (docs/cross-machine.md).
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

import torch
import yaml
from common import ROOT, cpu_model, machine  # first: puts the repo root first on sys.path

from agman import portable
from agman.pipeline.layout import CellPaths, SlotPaths
from agman.training.checkpoint import BEST_CHECKPOINT, load_checkpoint

CELLS = {"fashionai-agman": ("fashionai", "agman"), "deepfashion-agman": ("deepfashion", "agman"),
         "zappos-agman": ("zappos", "agman")}
RESULTS = ROOT / "benchmarks" / "results" / "cross_machine"
COPIED = ("agman", "stages", "params.yaml")
#: The commits of references written before references recorded their code.
MADE_WITH = {
    "amd-epyc-family25-model17.json": "c3856fe6420d1cd56251570a5132211282978434",  # the commit that added it
    "intel-xeon-processor-family6-model167.json": "ce622d6d284dadcf325f242b23751547e37bbc37",  # its maker's checkout
}
#: Which code runs the convolutions (``--conv``): oneDNN, as the portable setting leaves it;
#: oneDNN off, where ATen hands batches of 16 images or more to NNPACK; or both off, ATen's
#: im2col and MKL's GEMM. Each: whether oneDNN, whether NNPACK is enabled.
CONV = {"onednn": (True, True), "nnpack": (False, True), "aten": (False, False)}
#: ``python -m stages.<stage> <key>`` after switching oneDNN and NNPACK (argv: mkldnn nnpack stage key).
_LAUNCH = ("import runpy, sys, torch; torch.backends.mkldnn.enabled = sys.argv.pop(1) == '1'; "
           "torch.backends.nnpack.set_flags(sys.argv.pop(1) == '1'); "
           "runpy.run_module('stages.' + sys.argv.pop(1), run_name='__main__', alter_sys=True)")


def cpu_id() -> dict:
    """The CPU type: /proc/cpuinfo's model name, family and model (a VM may show only "AMD EPYC")."""
    info = {"model_name": cpu_model()}
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines())
    except (OSError, ValueError):
        return info
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return {**info, "cpu_family": fields.get("cpu family", "x"), "model": fields.get("model", "x")}


def cpu_caches() -> dict:
    """Core 0's caches as the kernel reports them (``L1d: 48K``): oneDNN sizes its blocks by them."""
    out = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        out[f"L{level}{ {'Data': 'd', 'Instruction': 'i'}.get(kind, '')}"] = size
    return out


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


def git(*args: str) -> subprocess.CompletedProcess:
    """``git <args>`` in the repository; status 127 where there is no git (a copy of the files)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        return subprocess.CompletedProcess(["git", *args], 127, "", "")


def code_state() -> dict:
    """The code a run copies: the commit checked out, whether the copied paths have uncommitted
    changes, and a SHA-256 of the copied files themselves."""
    digest = hashlib.sha256()
    for name in COPIED:
        paths = [ROOT / name] if (ROOT / name).is_file() else sorted(
            p for p in (ROOT / name).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for path in paths:
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    head = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--", *COPIED)
    return {"commit": head.stdout.strip() if head.returncode == 0 else None,
            "uncommitted_changes": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None,
            "sha256": digest.hexdigest()}


def reference_code(name: str, reference: dict, ours: dict) -> dict:
    """Which code a reference was made with, and whether the code copied here is the same."""
    recorded = reference.get("code") or {}
    commit = recorded.get("commit") or MADE_WITH.get(name)
    out = {"commit": commit, "recorded_in_file": bool(recorded)}
    if recorded.get("sha256"):
        out["same_code"] = recorded["sha256"] == ours["sha256"]
    elif commit:
        diff = git("diff", "--name-only", commit, "--", *COPIED)  # that commit against the files copied here
        out["same_code"] = None if diff.returncode else not diff.stdout.strip()
        if diff.returncode == 0:
            out["files_changed_since"] = len(diff.stdout.split())
    else:
        out["same_code"] = None
    return out


def code_line(code: dict) -> str:
    """The report's words for ``reference_code``."""
    commit = (code["commit"] or "")[:7]
    if code["same_code"] is True:
        return f"made with this code ({commit or 'commit not recorded'})"
    if code["same_code"] is False:
        return (f"made with OTHER code ({commit or 'commit not recorded'}): differences may be the code's, "
                "not the CPU's; compare on that CPU type with this code")
    return f"made with {commit or 'code not recorded'}; whether it is this code is unknown here"


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


def stage_env(workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_")) and k not in portable.ENV}
    env["DVC_ROOT"] = str(workdir)  # its MLflow runs go to the copy's own database
    return env


def set_conv(kind: str) -> None:
    """Switch this process's convolutions to ``CONV[kind]``."""
    mkldnn, nnpack = CONV[kind]
    torch.backends.mkldnn.enabled = mkldnn
    torch.backends.nnpack.set_flags(nnpack)


def run_stage(workdir: Path, stage: str, key: str, conv: str = "onednn") -> None:
    flags = [str(int(on)) for on in CONV[conv]]
    start = ["-m", f"stages.{stage}"] if conv == "onednn" else ["-c", _LAUNCH, *flags, stage]
    proc = subprocess.run([sys.executable, *start, key], cwd=workdir, env=stage_env(workdir),
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"stages.{stage} {key} failed:\n{proc.stderr[-3000:]}")


def prepare_slot(workdir: Path, slot: str, conv: str = "onednn") -> None:
    """The stages before a slot's cells: its data, cache and triplet files."""
    for stage in ("download", "prepare", "cache", "triplets"):
        run_stage(workdir, stage, slot, conv)


def rerun(workdir: Path, conv: str = "onednn") -> dict:
    """Every stage the cells need, in order; each cell's numbers."""
    for slot in sorted({slot for slot, _ in CELLS.values()}):
        prepare_slot(workdir, slot, conv)
    for cell in CELLS:
        run_stage(workdir, "cell", cell, conv)
    out = {}
    for cell, (slot, variant) in CELLS.items():
        paths, data = CellPaths(slot, variant), SlotPaths(slot)
        out[cell] = {
            "metrics": json.loads((workdir / paths.metrics).read_text()),
            "best_weights_sha256": weights_sha256(workdir / paths.run(0) / BEST_CHECKPOINT),
            "data_sha256": files_sha256(workdir / data.cache, workdir / data.triplets),
        }
    return out


def flat(metrics: dict, prefix: str = "") -> dict:
    """Nested metrics as one level, keys joined by ``/`` (``per_condition/class/loss``)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(cells: dict, reference: dict) -> list[str]:
    """What differs from a reference, one line per cell and field (numbers with their
    |difference|); empty when bit-identical."""
    lines = []
    for cell, ours in cells.items():
        theirs = reference["cells"].get(cell)
        if theirs is None:
            lines.append(f"{cell}: not in the reference")
            continue
        for field in ("data_sha256", "best_weights_sha256"):
            if ours[field] != theirs[field]:
                lines.append(f"{cell}: {field} differs")
        a, b = flat(theirs["metrics"]), flat(ours["metrics"])
        for key in sorted(set(a) | set(b)):
            there, here = a.get(key), b.get(key)
            if there != here:
                numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (there, here))
                delta = f" (|difference| {abs(there - here):.3g})" if numbers else ""
                lines.append(f"{cell}: {key} {there!r} there, {here!r} here{delta}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write this CPU type's reference file")
    parser.add_argument("--results", type=Path, help="folder of the reference files (default: "
                        "benchmarks/results/cross_machine, and its conv_<choice> folder for --conv)")
    parser.add_argument("--conv", choices=sorted(CONV), default="onednn",
                        help="the code that runs convolutions: onednn (as portable leaves it), nnpack (oneDNN "
                             "off), aten (oneDNN and NNPACK off); each has references of its own")
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = RESULTS if args.conv == "onednn" else RESULTS / f"conv_{args.conv}"
    code = code_state()
    with tempfile.TemporaryDirectory(prefix="agman-cross-machine-") as tmp:
        project_copy(Path(tmp))
        cells = rerun(Path(tmp), args.conv)
    cpu = cpu_id()
    result = {"cpu": cpu, "cpu_caches": cpu_caches(),
              "uncapped_aten_capability": torch.backends.cpu.get_cpu_capability(),
              "machine": {k: v for k, v in machine().items() if k != "load_average_1_5_15min"},
              "portable": {"env": portable.ENV, "threads": portable.THREADS}, "conv": args.conv, "code": code,
              "cells": cells}
    own = args.results / f"{slug(cpu)}.json"
    references = {path.name: json.loads(path.read_text()) for path in sorted(args.results.glob("*.json"))}
    report = {name: differences(cells, ref) for name, ref in references.items()}
    codes = {name: reference_code(name, ref, code) for name, ref in references.items()}
    if args.write:
        own.parent.mkdir(parents=True, exist_ok=True)
        own.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"this_cpu": cpu, "code": code, "conv": args.conv, "wrote": str(own) if args.write else None,
                      "load_average_1_5_15min": machine().get("load_average_1_5_15min"), "cells": cells,
                      "differences_by_reference": report, "code_by_reference": codes}, indent=2))
    dirty = " plus uncommitted changes" if code["uncommitted_changes"] else ""
    print(f"this run: {slug(cpu)}, code {(code['commit'] or 'not in git')[:7]}{dirty}"
          f", convolutions: {args.conv}", file=sys.stderr)
    for name, lines in report.items():
        verdict = "bit-identical" if not lines else f"{len(lines)} differences"
        print(f"{name}: {verdict}; {code_line(codes[name])}", file=sys.stderr)
    return 1 if any(report.values()) or not (report or args.write) else 0


if __name__ == "__main__":
    sys.exit(main())
