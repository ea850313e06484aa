"""Benchmark scripts run at toy size: they must work, not be fast."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import train_step  # noqa: E402


def test_train_step_benchmark_runs_at_toy_size():
    result = train_step.main(["--size", "32", "--batch", "2", "--repeats", "1"])
    assert set(result["seconds_per_step"]) == {"contiguous", "channels_last", "contiguous_no_cls_branch"}
    assert all(v > 0 for v in result["seconds_per_step"].values())
    assert result["speedup_vs_contiguous"]["contiguous"] == 1.0
