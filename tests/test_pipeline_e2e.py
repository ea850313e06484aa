"""The real user flow on a temporary copy of the repo: `dvc repro`, then `dvc exp run -S ...`,
under the tiny `ci` profile. Checks metrics.json, the DVC experiment table and the MLflow runs,
then runs the DeepFashion and Zappos50k stand-ins through their parsers the same way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT


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


def test_dvc_repro_then_exp_run(project):
    from mlflow.tracking import MlflowClient

    dest, env = project
    run(["dvc", "repro"], dest, env)
    metrics = json.loads((dest / "reports" / "metrics.json").read_text())
    assert 0.0 <= metrics["map"] <= 1.0 and 0.0 <= metrics["map_macro"] <= 1.0
    # The ci split is tiny: an attribute may draw no test query, and then has no MAP.
    assert set(metrics["map_per_attribute"]) <= {"sleeve_length", "skirt_length", "neckline_design", "texture"}
    assert metrics["n_queries"] > 0 and len(metrics["map_per_attribute"]) >= 2
    assert (dest / "reports" / "train_curves.csv").read_text().startswith("epoch,")
    # Nothing stale: a second repro runs no stage.
    assert "Running stage" not in run(["dvc", "repro"], dest, env)

    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "baseline"], dest, env)
    run(["dvc", "exp", "run", "-S", "model.aga.sa=false"], dest, env)
    rows = json.loads(run(["dvc", "exp", "show", "--json"], dest, env))
    found = []
    for baseline in rows:
        for entry in [baseline, *(e for exp in (baseline.get("experiments") or []) for e in exp["revs"])]:
            data = entry.get("data") or {}
            params = data.get("params", {}).get("params.yaml", {}).get("data", {})
            metric = data.get("metrics", {}).get("reports/metrics.json", {}).get("data", {})
            if "map" in metric:
                found.append((params["model"]["aga"]["sa"], metric["map"]))
    assert {sa for sa, _ in found} >= {True, False}, found

    client = MlflowClient(tracking_uri=f"sqlite:///{dest / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("agman").experiment_id])
    stages = sorted(r.data.tags["stage"] for r in runs)
    assert stages == ["evaluate", "evaluate", "train", "train"]
    train_runs = [r for r in runs if r.data.tags["stage"] == "train"]
    assert {r.data.params["model.aga.sa"] for r in train_runs} == {"True", "False"}
    for r in runs:
        assert r.data.tags["git_commit"] != "unknown" and "dvc_exp_name" in r.data.tags
        assert r.data.tags["git_dirty"] in ("true", "false")
        assert r.data.params["profile"] == "ci"
    assert any(r.data.tags["dvc_exp_name"] != "workspace" for r in runs)
    evaluate = [r for r in runs if r.data.tags["stage"] == "evaluate"]
    assert all("test_map" in r.data.metrics and "mlflow.parentRunId" in r.data.tags for r in evaluate)
    history = client.get_metric_history(train_runs[0].info.run_id, "val_map")
    assert [m.step for m in history] == [1, 2]


@pytest.mark.parametrize("dataset", ["demo_deepfashion", "demo_zappos"])
def test_the_other_stand_ins_run_through_their_parsers(project, dataset):
    dest, env = project
    out = run(["dvc", "exp", "run", "-S", f"profiles.ci.data.dataset={dataset}"], dest, env)
    assert "Running stage 'download'" in out and "Running stage 'prepare'" in out
    metrics = json.loads((dest / "reports" / "metrics.json").read_text())
    if dataset == "demo_zappos":
        assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["loss"] >= 0.0
        assert set(metrics["per_condition"]) == {"class", "closure", "gender", "heel"}
        assert metrics["n_triplets"] == sum(c["n_triplets"] for c in metrics["per_condition"].values())
    else:
        assert 0.0 <= metrics["map"] <= 1.0
        assert set(metrics["map_per_attribute"]) <= {"texture", "fabric", "shape", "part", "style"}
    prepared = json.loads((dest / "data" / "cache" / "attributes.json").read_text())
    assert prepared["dataset"] == dataset
