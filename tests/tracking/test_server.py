"""The runs of one tiny cell, trained and evaluated through the stage code, sent to a real
``mlflow server`` (its own SQLite store and artifact folder, on a loopback port) and read back
over its REST API, as a team's shared server would hold them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from agman.pipeline import cache, cell, download, prepare, triplets
from agman.pipeline.cache import load_cached
from agman.tracking.datasets import split_digest
from tests.helpers import ci_config

CELL = "fashionai-agman"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, path: str, **query: str) -> dict:
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(query)}", timeout=30) as reply:
        return json.load(reply)


def post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


def stop(server: subprocess.Popen) -> None:
    """The server and its worker (one process group): terminate, wait, then kill."""
    for sig, patience in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=patience)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def mlflow_server(tmp_path) -> tuple[str, Path]:
    """The server's URL and its artifact folder; stopped however the test ends."""
    store = tmp_path / "server"
    store.mkdir()
    port = free_port()
    log = (store / "server.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{store / 'db.sqlite'}",
         "--artifacts-destination", str(store / "artifacts"), "--serve-artifacts"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # about 30 s on 2 busy cores
        while True:
            assert server.poll() is None, (store / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, (store / "server.log").read_text()
                time.sleep(0.5)
        yield url, store / "artifacts"
    finally:
        stop(server)
        log.close()


@pytest.mark.slow
def test_a_cells_runs_arrive_on_a_tracking_server_with_names_metrics_inputs_and_artifacts(
        mlflow_server, tmp_path, monkeypatch):
    url, artifacts = mlflow_server
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("DVC_ROOT", str(project))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    for name in ("AGMAN_NO_MLFLOW", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"):
        monkeypatch.delenv(name, raising=False)
    cfg = ci_config()
    for stage in (download, prepare, cache, triplets):
        stage.run(cfg, "fashionai")
    cell.run_train(cfg, CELL)
    cell.run_evaluate(cfg, CELL)

    experiment = get(url, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="agman-ci")["experiment"]
    runs = post(url, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    by_name = {r["info"]["run_name"]: r for r in runs}
    assert sorted(by_name) == ["fashionai-agman seed0", "fashionai-agman seed0 test"]
    train, test = by_name["fashionai-agman seed0"], by_name["fashionai-agman seed0 test"]
    assert {r["info"]["status"] for r in runs} == {"FINISHED"}
    tags = {t["key"]: t["value"] for t in test["data"]["tags"]}
    assert tags["mlflow.parentRunId"] == train["info"]["run_id"] and tags["stage"] == "evaluate"

    metrics = {run: {m["key"] for m in by_name[run]["data"]["metrics"]} for run in by_name}
    assert {"best_val_score", "best_epoch", "val_map"} <= metrics["fashionai-agman seed0"]
    assert {"test_map", "test_map_macro"} <= metrics["fashionai-agman seed0 test"]

    data = load_cached("fashionai")
    for run, splits in ((train, {"train": "training", "valid": "validation"}), (test, {"test": "testing"})):
        inputs = [(i["dataset"]["name"], i["dataset"]["digest"],
                   {t["key"]: t["value"] for t in i["tags"]}["mlflow.data.context"])
                  for i in run["inputs"]["dataset_inputs"]]
        assert inputs == [(f"demo_fashionai:{s}", split_digest(data, s), context) for s, context in splits.items()]

    listed = {run: {f["path"] for f in get(url, "/api/2.0/mlflow/artifacts/list",
                                           run_id=by_name[run]["info"]["run_id"])["files"]}
              for run in by_name}
    assert listed == {"fashionai-agman seed0": {"config.json", "seed0.csv"},
                      "fashionai-agman seed0 test": {"config.json", "metrics.json"}}
    # Stored by the server in its own artifact folder, not in the project.
    assert len(list(artifacts.rglob("metrics.json"))) == 1 and not (project / "mlruns").exists()
