"""The entry points' error reporting: an expected error is one line on stderr and exit status 2,
with its traceback only under AGMAN_DEBUG=1; a bug keeps its traceback."""

from __future__ import annotations

import importlib
import os
import runpy
import subprocess
import sys

import pytest
import yaml

from agman import cli
from agman.config import ConfigError
from agman.pipeline.entry import EXPECTED_ERRORS, global_main, stage_main
from tests.helpers import ROOT

STAGES = ("resolve", "download", "prepare", "cache", "triplets", "cell", "tables", "figures")
BAD_EPOCHS = "error: params.yaml: train.epochs: expected an integer, got 'fifty'"


@pytest.fixture
def bad_params(tmp_path, monkeypatch):
    """A project folder whose params.yaml has ``train.epochs: fifty`` in the base block."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["train"]["epochs"] = "fifty"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGMAN_DEBUG", raising=False)
    return tmp_path


def error_class(name: str) -> type[BaseException]:
    module, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(module), cls)


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_reports_a_bad_config_as_one_line_and_exits_2(bad_params, stage, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [f"stages/{stage}.py", "fashionai"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(f"stages.{stage}", run_name="__main__")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [BAD_EPOCHS]


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_each_expected_error_class_is_one_line_naming_its_file(name, capsys, monkeypatch):
    monkeypatch.delenv("AGMAN_DEBUG", raising=False)
    cls = error_class(name)  # also proves the named class exists

    def run(cfg, key):
        raise cls(f"data/{key}/items.csv:7: bad row")

    monkeypatch.setattr("agman.pipeline.entry.load_config", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        stage_main(run, "usage", ["fashionai"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["error: data/fashionai/items.csv:7: bad row"]


def test_a_message_of_several_lines_is_folded_into_one(capsys, monkeypatch):
    monkeypatch.delenv("AGMAN_DEBUG", raising=False)
    missing = error_class("agman.data.errors.MissingDataError")

    def run(cfg):
        raise missing("DeepFashion is not in place under /data.\nMissing files:\n  - img.zip (Img/)")

    monkeypatch.setattr("agman.pipeline.entry.load_config", lambda: None)
    with pytest.raises(SystemExit):
        global_main(run)
    assert capsys.readouterr().err.splitlines() == [
        "error: DeepFashion is not in place under /data. Missing files: - img.zip (Img/)"]


def test_agman_debug_lets_the_expected_error_through_with_its_traceback(bad_params, monkeypatch):
    monkeypatch.setenv("AGMAN_DEBUG", "1")
    with pytest.raises(ConfigError, match="params.yaml: train.epochs"):
        stage_main(lambda cfg, key: None, "usage", ["fashionai"])


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.delenv("AGMAN_DEBUG", raising=False)
    monkeypatch.setattr("agman.pipeline.entry.load_config", lambda: None)
    with pytest.raises(ZeroDivisionError):
        global_main(lambda cfg: 1 / 0)
    with pytest.raises(ValueError):  # a plain ValueError is not a user's input error
        global_main(lambda cfg: int("x"))


def run_stage(folder, *args: str, debug: bool = False) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "AGMAN_DEBUG"}
    environ.update(PYTHONPATH=str(ROOT), DVC_NO_ANALYTICS="1", **({"AGMAN_DEBUG": "1"} if debug else {}))
    return subprocess.run([sys.executable, *args], cwd=folder, env=environ, capture_output=True, text=True,
                          timeout=120)


def test_a_stage_process_prints_one_line_and_exits_2(bad_params):
    done = run_stage(bad_params, "-m", "stages.tables")  # the stage with the lightest imports
    assert done.returncode == 2
    assert done.stderr.splitlines() == [BAD_EPOCHS]


def test_a_stage_process_under_agman_debug_prints_the_traceback(bad_params):
    done = run_stage(bad_params, "-m", "stages.tables", debug=True)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1] == f"agman.config.load.ConfigError: {BAD_EPOCHS[7:]}"


def test_the_agman_command_prints_one_line_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AGMAN_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["search", "--run", str(tmp_path / "nope"), "--image", str(tmp_path / "q.jpg"), "--attribute", "x"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {tmp_path / 'nope'}: checkpoint not found"]


def test_the_agman_command_under_agman_debug_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("AGMAN_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        cli.main(["search", "--run", str(tmp_path / "nope"), "--image", str(tmp_path / "q.jpg"), "--attribute", "x"])
