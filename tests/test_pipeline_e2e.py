"""The real user flow on a temporary copy of the repo under the tiny `ci` profile: `dvc repro`
runs the whole matrix (the three stand-ins through their parsers, every cell of Tables 2-10) and
the tables stage; then `dvc exp run -S ...` on one cell. Checks the metrics, every table file,
the DVC experiment table and the MLflow runs and tags."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import ROOT


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict]:
    if shutil.which("git") is None:
        pytest.skip("git is needed for DVC experiments")
    dest = tmp_path_factory.mktemp("project")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["profile"] = "ci"
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    run(["git", "init", "-q"], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "copy"], dest, env)
    return dest, env


def test_whole_matrix_and_tables(project):
    from mlflow.tracking import MlflowClient

    from agman.config import load_config
    from agman.reports.tables import TABLES

    dest, env = project
    out = run(["dvc", "repro"], dest, env)
    cfg = load_config(dest / "params.yaml")
    for stage in ("download", "prepare", "cache", "triplets"):
        for slot in ("fashionai", "deepfashion", "zappos"):
            assert f"Running stage '{stage}@{slot}'" in out
    for cell, spec in cfg.cells.items():
        metrics = json.loads((dest / "reports" / "metrics" / f"{cell}.json").read_text())
        if spec.slot == "zappos":
            assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["loss"] >= 0.0
            assert set(metrics["per_condition"]) == {"class", "closure", "gender", "heel"}
        else:
            assert 0.0 <= metrics["map"] <= 1.0 and metrics["n_queries"] > 0
    # Every table file, with every row and every column of our numbers filled.
    tables = dest / "reports" / "tables"
    assert (tables / "README.md").is_file()
    for spec in TABLES:
        for ext in ("md", "csv", "tex"):
            assert (tables / f"table{spec.number}.{ext}").stat().st_size > 0
        frame = pd.read_csv(tables / f"table{spec.number}.csv")
        assert list(frame["variant"]) == list(spec.rows)
        ours = [c for c in frame.columns if not c.endswith(("_std", "_paper", "_delta")) and c not in
                ("variant", "method", *spec.marks)]
        assert ours and frame[ours].notna().all().all(), (spec.number, frame[ours])
    figures = sorted(path.name for path in (dest / "reports" / "figures").glob("*.png"))
    for name in ("fig5_retrieval_fashionai.png", "fig6_ranking_deepfashion.png", "fig7_attention_fashionai.png",
                 "fig8_triplets_zappos.png", "curves_zappos.png"):
        assert name in figures, figures
    # Nothing stale: a second repro runs no stage.
    assert "Running stage" not in run(["dvc", "repro"], dest, env)

    client = MlflowClient(tracking_uri=f"sqlite:///{dest / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("agman").experiment_id
    runs = client.search_runs([experiment], max_results=1000)
    stages = sorted(r.data.tags["stage"] for r in runs)
    assert stages == ["evaluate"] * len(cfg.cells) + ["figures"] + ["train"] * len(cfg.cells)
    runs = [r for r in runs if r.data.tags["stage"] != "figures"]
    table5 = client.search_runs([experiment], "tags.table_5 = 'true' and tags.stage = 'train'")
    assert sorted(r.data.tags["variant"] for r in table5) == ["aga_cls", "aga_hier", "aga_only", "agman"]
    assert {r.data.tags["dataset"] for r in table5} == {"fashionai"}
    for r in runs:
        assert r.data.tags["git_commit"] != "unknown" and r.data.params["profile"] == "ci"
        assert r.data.tags["cell"] == f"{r.data.tags['dataset']}-{r.data.tags['variant']}"
    evaluate = [r for r in runs if r.data.tags["stage"] == "evaluate"]
    assert all("mlflow.parentRunId" in r.data.tags for r in evaluate)
    train_run = next(r for r in runs if r.data.tags["stage"] == "train" and r.data.tags["cell"] == "zappos-agman")
    assert [m.step for m in client.get_metric_history(train_run.info.run_id, "val_accuracy")] == [1]


def test_an_experiment_on_one_cell_retrains_only_that_cell(project):
    from mlflow.tracking import MlflowClient

    dest, env = project
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "baseline"], dest, env)
    out = run(["dvc", "exp", "run", "-S", "model.aga.sa=false", "cell@fashionai-agman"], dest, env)
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    assert ran == ["cell@fashionai-agman", "resolve"], ran
    rows = json.loads(run(["dvc", "exp", "show", "--json"], dest, env))
    found = []
    for baseline in rows:
        for entry in [baseline, *(e for exp in (baseline.get("experiments") or []) for e in exp["revs"])]:
            data = entry.get("data") or {}
            params = data.get("params", {}).get("params.yaml", {}).get("data", {})
            metric = data.get("metrics", {}).get("reports/metrics/fashionai-agman.json", {}).get("data", {})
            if "map" in metric:
                found.append((params["model"]["aga"]["sa"], metric["map"]))
    assert {sa for sa, _ in found} >= {True, False}, found
    client = MlflowClient(tracking_uri=f"sqlite:///{dest / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("agman").experiment_id
    retrained = client.search_runs([experiment], "tags.dvc_exp_name != 'workspace'")
    assert {(r.data.tags["cell"], r.data.tags["stage"]) for r in retrained} == {
        ("fashionai-agman", "train"), ("fashionai-agman", "evaluate")}
    assert all(r.data.params["model.aga.sa"] == "False" for r in retrained)
