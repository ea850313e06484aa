"""The summary of one benchmarks/gpu_check.sh run: the GPU, each section's status, time and GPU
utilisation, and the headline figures read back from the sections' logs (JSON on stdout).

    python benchmarks/gpu_summary.py gpu-check/
"""

from __future__ import annotations

import datetime
import json
import re
import statistics
import sys
from pathlib import Path


def last_json(text: str) -> dict | None:
    """The last JSON object a benchmark printed (it prints one, indented, at the end)."""
    starts = [m.start() for m in re.finditer(r"^\{", text, flags=re.M)]
    for start in reversed(starts):
        try:
            return json.loads(text[start:])
        except json.JSONDecodeError:
            continue
    return None


def samples(folder: Path) -> list[tuple[float, float]]:
    """(unix time, utilisation %) of nvidia-smi's samples."""
    out = []
    path = folder / "gpu_samples.csv"
    for line in path.read_text().splitlines() if path.is_file() else []:
        fields = [f.strip() for f in line.split(",")]
        try:
            when = datetime.datetime.strptime(fields[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            out.append((when, float(fields[1])))
        except (ValueError, IndexError):
            continue
    return out


def utilisation(points: list[tuple[float, float]], start: float, end: float) -> dict | None:
    inside = [u for t, u in points if start <= t <= end]
    if not inside:
        return None
    return {"mean_pct": round(statistics.mean(inside), 1), "median_pct": statistics.median(inside),
            "samples": len(inside)}


def cell_figures(log: str, points) -> dict:
    """The cell stage's training rate line, its window's utilisation, and its test MAP line."""
    out = {}
    rate = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) \S+ INFO: (epoch 1: (\d+) batches, (\d+) images in "
                     r"([\d.]+) s: (\d+) images/s(?:, (\d+) after the first (\d+))?)", log)
    if rate:
        end = datetime.datetime.strptime(rate[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        seconds = float(rate[5])
        out.update(line=rate[2], images_per_s=int(rate[6]), steady_images_per_s=int(rate[7]) if rate[7] else None,
                   utilisation_while_training=utilisation(points, end - seconds, end))
        if rate[7]:  # the batches after the first read of the losses, at their own rate: warm-up left out
            steady_s = int(rate[4]) * (1 - int(rate[8]) / int(rate[3])) / int(rate[7])
            out["utilisation_after_warmup"] = utilisation(points, end - steady_s, end)
    test = re.search(r"INFO: (fashionai-agman seed 0: test MAP [^\"\n]*)", log)
    out["test"] = test[1] if test else None
    feed = re.search(r"INFO: (loss: [^\"\n]*)", log)
    out["settings"] = feed[1] if feed else None
    return out


def figures(name: str, text: str, points) -> dict | None:
    data = last_json(text)
    if name == "tests":
        lines = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed|error|skipped)", line)]
        return {"result": lines[-1] if lines else None}
    if name == "cell":
        return cell_figures(text, points)
    if data is None:
        return None
    if name in ("train_step", "compile"):
        return {k: round(v["images_per_s"]) for k, v in data["runs"].items()} | {
            "over_eager_bf16_cl": {k: round(v, 2) for k, v in data["over_eager_bf16_cl"].items()}}
    if name.startswith("digest_"):
        return data["digest"]
    if name in ("jobs", "jobs_mps"):
        if "mps_error" in data:
            return {"mps_error": data["mps_error"]}
        return {k: round(v["images_per_s_total"]) if "images_per_s_total" in v else v for k, v in data["sweep"].items()}
    if name == "data_path":
        return {"per_core": {k: round(v) for k, v in data["images_per_s_per_core"].items()},
                "feeds": {k: (round(v["images_per_s"]) if k != "gpu_decode_jpeg" else v)
                          for k, v in data["feeds"].items()}}
    if name == "eval" or (name.startswith("eval_") and name != "eval_map"):
        return {k: round(v["seconds"], 3) for k, v in data["runs"].items()}
    if name == "eval_map":
        return {k: {"score_split_vs_bare_float32": round(v["score_split_vs_bare_float32"], 2),
                    "score_split_seconds": v["score_split_seconds"], "max_abs_diff": v["max_abs_diff"]}
                for k, v in data["datasets"].items()}
    return None


def main(folder: Path) -> dict:
    points = samples(folder)
    versions = (folder / "versions.txt").read_text().strip() if (folder / "versions.txt").is_file() else None
    summary = {"versions": versions, "sections": {}}
    rows = (folder / "sections.tsv").read_text().splitlines() if (folder / "sections.tsv").is_file() else []
    for row in rows:
        name, start, end, rc = row.split("\t")
        text = (folder / f"{name}.log").read_text(errors="replace") if (folder / f"{name}.log").is_file() else ""
        summary["sections"][name] = {"rc": int(rc), "seconds": round(float(end) - float(start), 1),
                                     "utilisation": utilisation(points, float(start), float(end)),
                                     "figures": figures(name, text, points)}
    digests = {}
    for name, section in summary["sections"].items():
        if name.startswith("digest_") and section["figures"]:
            digests.setdefault(name.split("_")[1], []).append(section["figures"]["weights_sha256"])
    summary["rerun_bit_identical"] = {k: len(set(v)) == 1 for k, v in digests.items() if len(v) > 1}
    return summary


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), indent=2))
