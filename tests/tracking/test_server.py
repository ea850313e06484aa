"""The runs of one tiny cell, trained and evaluated through the stage code, sent to a real
``mlflow server`` with basic authentication (its own SQLite store, artifact folder and user
database, on a loopback port) and read back over its REST API, as a team's shared server would
hold them (docs/mlflow.md); a client without the right credentials is refused."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client

from agman.pipeline import cache, cell, download, prepare, triplets
from agman.pipeline.cache import load_cached
from agman.tracking.datasets import split_digest
from tests.helpers import ci_config

CELL = "fashionai-agman"
ADMIN = "admin"
USER = "trainer"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def request(url: str, endpoint: str, auth: dict[str, str], body: dict | None = None, /,
            **query: str) -> urllib.request.Request:
    """A GET with ``query``, or a POST of ``body`` as JSON; ``auth``: its headers."""
    data = None if body is None else json.dumps(body).encode()
    headers = {**auth, **({} if body is None else {"Content-Type": "application/json"})}
    return urllib.request.Request(f"{url}{endpoint}?{urllib.parse.urlencode(query)}", data=data, headers=headers)


def get(url: str, endpoint: str, auth: dict[str, str], /, **query: str) -> dict:
    with urllib.request.urlopen(request(url, endpoint, auth, **query), timeout=30) as reply:
        return json.load(reply)


def post(url: str, endpoint: str, body: dict, auth: dict[str, str]) -> dict:
    with urllib.request.urlopen(request(url, endpoint, auth, body), timeout=30) as reply:
        return json.load(reply)


def status(url: str, endpoint: str, auth: dict[str, str], body: dict | None = None, /, **query: str) -> int:
    """The HTTP status the server answers with."""
    try:
        with urllib.request.urlopen(request(url, endpoint, auth, body, **query), timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


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
def mlflow_server(tmp_path) -> tuple[str, str, Path]:
    """The URL of a basic-auth server, its admin's password and its artifact folder; stopped
    however the test ends."""
    store = tmp_path / "server"
    (store / "tmp").mkdir(parents=True)
    admin_password = secrets.token_urlsafe(16)
    (store / "auth.ini").write_text(
        f"[mlflow]\ndefault_permission = EDIT\ndatabase_uri = sqlite:///{store / 'auth.sqlite'}\n"
        f"admin_username = {ADMIN}\nadmin_password = {admin_password}\n")
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(store / "auth.ini"),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
           # The server's lock files go to its own folder, not the machine's /tmp.
           "TMPDIR": str(store / "tmp")}
    for name in ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"):
        env.pop(name, None)  # they would override auth.ini
    port = free_port()
    log = (store / "server.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--app-name", "basic-auth",
         "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{store / 'db.sqlite'}",
         "--artifacts-destination", str(store / "artifacts"), "--serve-artifacts"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
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
        yield url, admin_password, store / "artifacts"
    finally:
        stop(server)
        log.close()


@pytest.mark.slow
def test_a_cells_runs_arrive_with_credentials_on_a_basic_auth_server_and_anyone_else_is_refused(
        mlflow_server, tmp_path, monkeypatch):
    url, admin_password, artifacts = mlflow_server
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("DVC_ROOT", str(project))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    for name in ("AGMAN_NO_MLFLOW", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING",
                 "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # The admin creates the teammate's account as docs/mlflow.md does; the stages then log as that user.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", admin_password)
    password = secrets.token_urlsafe(16)
    get_app_client("basic-auth", tracking_uri=url).create_user(USER, password)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    cfg = ci_config()
    for stage in (download, prepare, cache, triplets):
        stage.run(cfg, "fashionai")
    cell.run_train(cfg, CELL)
    cell.run_evaluate(cfg, CELL)

    auth = basic(USER, password)
    experiment = get(url, "/api/2.0/mlflow/experiments/get-by-name", auth, experiment_name="agman-ci")["experiment"]
    search = {"experiment_ids": [experiment["experiment_id"]]}
    runs = post(url, "/api/2.0/mlflow/runs/search", search, auth)["runs"]
    by_name = {r["info"]["run_name"]: r for r in runs}
    assert sorted(by_name) == ["fashionai-agman seed0", "fashionai-agman seed0 test"]
    train, test = by_name["fashionai-agman seed0"], by_name["fashionai-agman seed0 test"]
    assert {r["info"]["status"] for r in runs} == {"FINISHED"}
    assert {r["info"]["user_id"] for r in runs} == {USER}
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

    listed = {run: {f["path"] for f in get(url, "/api/2.0/mlflow/artifacts/list", auth,
                                           run_id=by_name[run]["info"]["run_id"])["files"]}
              for run in by_name}
    assert listed == {"fashionai-agman seed0": {"config.json", "seed0.csv"},
                      "fashionai-agman seed0 test": {"config.json", "metrics.json"}}
    # Stored by the server in its own artifact folder, not in the project.
    assert len(list(artifacts.rglob("metrics.json"))) == 1 and not (project / "mlruns").exists()

    # Without credentials, or with a wrong password, neither the runs nor their artifacts are served.
    run_id = train["info"]["run_id"]
    for anyone in ({}, basic(USER, password + "x")):
        assert status(url, "/api/2.0/mlflow/runs/search", anyone, search) == 401
        assert status(url, "/api/2.0/mlflow/artifacts/list", anyone, run_id=run_id) == 401
        assert status(url, "/get-artifact", anyone, path="config.json", run_uuid=run_id) == 401
    assert status(url, "/get-artifact", auth, path="config.json", run_uuid=run_id) == 200
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(MlflowException, match="401"):
        MlflowClient(url).search_runs([experiment["experiment_id"]])
