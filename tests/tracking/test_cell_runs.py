"""A cell's MLflow runs against a local SQLite store: their names, experiment, dataset inputs, a
reopened run, and when system metrics are sampled."""

from __future__ import annotations

import json
import time

import pytest
import torch
from mlflow.tracking import MlflowClient

from agman.tracking import cell_runs
from agman.tracking.cell_runs import cell_tracker
from agman.tracking.datasets import split_digest
from agman.tracking.mlflow_run import tracking_uri
from tests.helpers import ci_config

CELL = "fashionai-agman"


@pytest.fixture
def tracked(tmp_path, monkeypatch):
    """Runs go to ``<tmp>/mlflow.db`` with artifacts in ``<tmp>/mlruns``, as in a fresh project."""
    # mlflow.set_tracking_uri exports $MLFLOW_TRACKING_URI: set, then unset, so that teardown
    # removes what MLflow writes there instead of leaving this test's database to later tests.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "AGMAN_NO_MLFLOW",
                 "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    return MlflowClient(tracking_uri())


def inputs_of(run) -> list[tuple[str, str, str]]:
    return [(i.dataset.name, i.dataset.digest, {t.key: t.value for t in i.tags}["mlflow.data.context"])
            for i in run.inputs.dataset_inputs]


def test_training_and_evaluation_runs_are_named_for_their_cell_and_seed(tracked, demo_data, tmp_path):
    cfg = ci_config(train={"seed": 1})
    train = cell_tracker(cfg, "train", CELL, demo_data)(None)
    train.end()
    test = cell_tracker(cfg, "evaluate", CELL, demo_data, parent_run_id=train.run_id)(None)
    test.end()
    train_run, test_run = tracked.get_run(train.run_id), tracked.get_run(test.run_id)
    assert train_run.info.run_name == "fashionai-agman seed1"
    assert test_run.info.run_name == "fashionai-agman seed1 test"
    assert test_run.data.tags["mlflow.parentRunId"] == train.run_id
    experiment = tracked.get_experiment(train_run.info.experiment_id)
    assert experiment.name == "agman-ci" and test_run.info.experiment_id == experiment.experiment_id
    assert experiment.artifact_location == (tmp_path / "mlruns").as_uri()


def test_each_run_logs_the_splits_it_read_as_dataset_inputs(tracked, demo_data):
    cfg = ci_config()
    train = cell_tracker(cfg, "train", CELL, demo_data)(None)
    train.end()
    test = cell_tracker(cfg, "evaluate", CELL, demo_data)(None)
    test.end()
    train_run, test_run = tracked.get_run(train.run_id), tracked.get_run(test.run_id)
    assert inputs_of(train_run) == [
        ("demo_fashionai:train", split_digest(demo_data, "train"), "training"),
        ("demo_fashionai:valid", split_digest(demo_data, "valid"), "validation")]
    assert inputs_of(test_run) == [("demo_fashionai:test", split_digest(demo_data, "test"), "testing")]
    dataset = test_run.inputs.dataset_inputs[0].dataset
    assert json.loads(dataset.source)["uri"] == str(demo_data.cache.folder.parent / "items.csv")
    assert json.loads(dataset.profile)["num_rows"] == (demo_data.table["split"] == "test").sum()


def test_a_reopened_run_keeps_its_name_and_logs_no_second_input(tracked, demo_data):
    factory = cell_tracker(ci_config(), "train", CELL, demo_data)
    first = factory(None)
    first.end("KILLED")  # an interrupted training
    again = factory(first.run_id)
    again.log_metrics({"loss": 1.0}, step=2)
    again.end()
    runs = tracked.search_runs([tracked.get_experiment_by_name("agman-ci").experiment_id])
    assert [r.info.run_id for r in runs] == [first.run_id]
    assert runs[0].info.run_name == "fashionai-agman seed0" and runs[0].info.status == "FINISHED"
    assert len(runs[0].inputs.dataset_inputs) == 2


class Recorder:
    """Stands in for MlflowRun: records the keyword arguments of the run it would start."""
    calls: list[dict] = []

    def __init__(self, *args, **kwargs):
        Recorder.calls.append(kwargs)

    def log_dict(self, *args):
        pass


@pytest.mark.parametrize("device, sampled", [("cuda", True), ("cpu", False)])
def test_runs_on_cuda_sample_system_metrics_and_runs_on_the_cpu_do_not(device, sampled, demo_data, monkeypatch):
    monkeypatch.delenv("AGMAN_NO_MLFLOW", raising=False)
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)
    monkeypatch.setattr(cell_runs, "pick_device", lambda name: torch.device(device))
    monkeypatch.setattr(cell_runs, "MlflowRun", Recorder)
    Recorder.calls = []
    cell_tracker(ci_config(), "train", CELL, demo_data)(None)
    assert Recorder.calls[0]["system_metrics"] is sampled


def test_mlflows_switch_forces_system_metrics_on_a_cpu_run(tracked, demo_data, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    run = cell_tracker(ci_config(), "train", CELL, demo_data)(None)
    time.sleep(1.5)
    run.end()
    assert "system/cpu_utilization_percentage" in tracked.get_run(run.run_id).data.metrics
