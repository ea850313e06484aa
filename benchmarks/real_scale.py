"""The stages at the real datasets' sizes: wall time, peak memory and disk written per stage and slot.

Runs ``download``, ``prepare``, ``cache`` and ``triplets`` (``python -m stages.<stage> <slot>``, the
commands dvc.yaml runs) for each slot on the full-size replicas of ``benchmarks/replica.py``, in
a scratch project folder whose ``params.yaml`` is the repository's under the paper profile with
each slot's ``root`` pointing at its replica (the replica folder is the user's ``data/raw/<slot>/``:
the download stage extracts into it). Overrides (``--set key=value``, YAML values) adjust the
paper's data settings, e.g. the cache's image size. Each stage runs in its own process; its peak
RSS is that process's ``ru_maxrss`` (from ``os.wait4``), ``peak_tree_pss_mb`` the largest sum of
proportional set sizes over it and its DataLoader workers (sampled every 0.2 s: pages the workers
share with the parent count once, so a table copied into each worker shows, one shared does
not), its disk the bytes it added under the replica and the scratch folder. ``--cells`` runs
``cell@<cell>`` stages after the data stages (with ``--set`` choosing a small model and a few
batches: the evaluation then scores the full test split). ``--profile`` also runs each stage
under cProfile and reports the functions that took most of its own time.

    python benchmarks/replica.py --out /tmp/agman-scale/replicas
    python benchmarks/real_scale.py --replicas /tmp/agman-scale/replicas --work /tmp/agman-scale/work \\
        --set data.image_size=64 --set data.num_workers=2
    python benchmarks/real_scale.py ... --keep --stages --cells fashionai-agman deepfashion-agman zappos-agman \
        --set model.backbone=resnet18 --set model.pretrained=false --set model.embed_dim=64 \
        --set train.epochs=1 --set train.max_batches=20 --set train.device=cpu
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common
import psutil
import yaml

STAGES = ("download", "prepare", "cache", "triplets")
SLOTS = ("fashionai", "deepfashion", "zappos")


def set_key(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def write_params(work: Path, replicas: Path, slots, overrides: list[str]) -> None:
    """The repository's params.yaml under a ``replica`` profile: the paper's, roots on the replicas."""
    params = yaml.safe_load((common.ROOT / "params.yaml").read_text())
    profile = {"datasets": {slot: {"dataset": slot, "root": str((replicas / slot).resolve())} for slot in slots}}
    for item in overrides:
        key, _, value = item.partition("=")
        set_key(profile, key, yaml.safe_load(value))
    params["profiles"]["replica"] = profile
    params["profile"] = "replica"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def tree_pss(proc: psutil.Process) -> int:
    total = 0
    for p in (proc, *proc.children(recursive=True)):
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run_stage(work: Path, args: list[str], profile_to: Path | None) -> tuple[dict, str]:
    """Run ``python <args>`` in ``work`` (``["-m", "stages.cache", slot]``); its figures and its
    output (stdout and stderr)."""
    env = {**os.environ, "PYTHONPATH": str(common.ROOT), "AGMAN_NO_MLFLOW": "1", "DVC_NO_ANALYTICS": "1"}
    prefix = [sys.executable]
    if profile_to is not None:
        prefix += ["-m", "cProfile", "-o", str(profile_to)]
    start = time.perf_counter()
    proc = subprocess.Popen([*prefix, *args], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    watched, peak_pss = psutil.Process(proc.pid), 0
    output = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True)
    reader.start()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # not proc.poll(): it would reap the usage
        if pid:
            break
        try:
            peak_pss = max(peak_pss, tree_pss(watched))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    output = "".join(output)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{output[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "peak_tree_pss_mb": round(peak_pss / 2**20, 1),
            "user_s": round(usage.ru_utime, 1), "system_s": round(usage.ru_stime, 1)}, output


def cache_baseline(work: Path, slot: str, n: int) -> dict:
    """Images/s of the bare cache writer (what benchmarks/data_path.py times) on the slot's first
    ``n`` images, with the settings the stage ran under, in a process of its own watched as the
    stage is (the memory sampling slows what it watches, so both pay it): the stage's rate is
    compared with it."""
    result, output = run_stage(work, [__file__, "bare-cache", slot, str(n)], None)
    return {**json.loads(output.strip().splitlines()[-1]), "process_seconds": result["seconds"]}


def bare_cache(work: Path, slot: str, n: int) -> dict:
    """What :func:`cache_baseline` runs in its own process: ``write_cache`` alone, timed."""
    from agman.config import load_config
    from agman.data.cache import write_cache
    from agman.data.prepared import read_prepared
    from agman.pipeline.matrix import slot_config

    d = slot_config(load_config(work / "params.yaml"), slot).data
    paths = list(dict.fromkeys(read_prepared(work / "data" / slot / "cache").table["path"]))
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        start = time.perf_counter()
        write_cache(paths[:n], d.root, Path(tmp) / "cache", d.image_size, fmt=d.cache.format,
                    jpeg_quality=d.cache.jpeg_quality, workers=d.num_workers)
        seconds = time.perf_counter() - start
    return {"images": min(n, len(paths)), "seconds": round(seconds, 2),
            "images_per_s": round(min(n, len(paths)) / seconds, 1), "stage_images": len(paths)}


def cache_loop(output: str) -> tuple[float, float]:
    """Seconds and images/s of the cache stage's own image loop, from its log line: without the
    process start, the imports and the table reads and writes around it, which do not grow with
    the images."""
    loop = re.search(r"cached \d+ images .*; ([\d.]+) s, (\d+) images/s", output)
    if loop is None:
        raise SystemExit("cache stage: no 'cached N images ... s, N images/s' line in its output")
    return float(loop[1]), float(loop[2])


def top_functions(profile: Path, count: int = 8) -> list[str]:
    stats = pstats.Stats(str(profile))
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # own time
    return [f"{func[2]} ({Path(func[0]).name}:{func[1]}): {own:.1f} s own, {cum:.1f} s cumulative"
            for func, (_, _, own, cum, _) in rows[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="scratch project folder (replaced)")
    parser.add_argument("--slots", nargs="*", default=list(SLOTS), choices=SLOTS)
    parser.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    parser.add_argument("--cells", nargs="*", default=[], help="cell@<cell> stages to run after the data stages")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--profile", action="store_true", help="also run each stage under cProfile")
    parser.add_argument("--cache-baseline", type=int, default=0, metavar="N",
                        help="after cache@<slot>: time agman.data.cache.write_cache alone on N of its images")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder's outputs from a previous run")
    args = parser.parse_args()

    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    write_params(args.work, args.replicas, args.slots, args.overrides)
    report = {"machine": common.machine(), "overrides": args.overrides, "stages": {}}
    report["stages"]["resolve"], _ = run_stage(args.work, ["-m", "stages.resolve"], None)
    for slot in args.slots:
        for stage in args.stages:
            watched = (args.work / "data", args.replicas / slot)
            before = sum(map(common.folder_bytes, watched))
            profile = args.work / f"{stage}-{slot}.prof" if args.profile else None
            result, output = run_stage(args.work, ["-m", f"stages.{stage}", slot], profile)
            result["disk_written_mb"] = round(
                (sum(map(common.folder_bytes, watched)) - before) / 2**20, 1)
            if profile is not None:
                result["top_own_time"] = top_functions(profile)
                profile.unlink()
            if stage == "cache" and args.cache_baseline:
                result["baseline"] = cache_baseline(args.work, slot, args.cache_baseline)
                result["images_per_s"] = round(result["baseline"]["stage_images"] / result["seconds"], 1)
                result["stage_vs_bare_seconds_per_image"] = round(
                    result["baseline"]["images_per_s"] / result["images_per_s"], 3)
                result["loop_seconds"], result["loop_images_per_s"] = cache_loop(output)
                result["loop_vs_bare_seconds_per_image"] = round(
                    result["baseline"]["images_per_s"] / result["loop_images_per_s"], 3)
            report["stages"][f"{stage}@{slot}"] = result
            print(json.dumps({f"{stage}@{slot}": result}), flush=True)
    for cell in args.cells:
        result, output = run_stage(args.work, ["-m", "stages.cell", cell], None)
        (args.work / f"cell-{cell}.log").write_text(output)  # the whole log, progress bars included
        lines = output.replace("\r", "\n").splitlines()
        result["log"] = [line for line in lines if " INFO: " in line]
        report["stages"][f"cell@{cell}"] = result
        print(json.dumps({f"cell@{cell}": result}), flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["bare-cache"]:  # cache_baseline's own process
        print(json.dumps(bare_cache(Path.cwd(), sys.argv[2], int(sys.argv[3]))))
    else:
        main()
