"""train.portable (agman.portable): entered before any tensor operation, it caps ATen, oneDNN and
MKL as each library reports, fixes the threads and turns deterministic algorithms on; entered too
late it refuses; the cell stage enters it before training, and it is part of a cell's config."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from agman import portable
from agman.pipeline import cell
from agman.pipeline.params import cell_params
from tests.helpers import ROOT, ci_config

AVX512 = torch.backends.cpu.get_cpu_capability() == "AVX512"

ENTER_THEN_COMPUTE = """
import json, torch
from agman import portable
portable.enter()
conv = torch.nn.Conv2d(16, 16, 3)
conv(torch.randn(2, 16, 16, 16)).sum().backward()
torch.randn(64, 64) @ torch.randn(64, 64)
print(json.dumps(portable.state()))
"""


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in portable.ENV and not k.endswith("_VERBOSE")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"), reason="needs AVX2")
def test_entered_first_it_caps_every_library_fixes_the_threads_and_is_deterministic():
    proc = python(ENTER_THEN_COMPUTE, ONEDNN_VERBOSE="1", MKL_VERBOSE="1", OMP_NUM_THREADS="1")  # 1 unless fixed
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert '"aten_cpu_capability": "AVX2"' in last and '"threads": 2' in last and '"deterministic": true' in last
    assert "onednn_verbose,v1,info,cpu,isa:Intel AVX2\n" in proc.stdout  # oneDNN's own report of its ISA
    assert "CNR:COMPATIBLE" in proc.stdout  # MKL's own report of its code path


@pytest.mark.skipif(not AVX512, reason="only an AVX-512 CPU shows ATen's uncapped kernels")
def test_entered_after_a_tensor_operation_it_refuses():
    proc = python("import torch; torch.ones(2).sum()\nfrom agman import portable; portable.enter()")
    assert proc.returncode != 0
    assert "PortableError: train.portable: a tensor operation ran before it was set" in proc.stderr


def test_the_cell_stage_enters_it_before_training_only_when_asked(monkeypatch):
    calls = []
    monkeypatch.setattr(portable, "enter", lambda: calls.append("enter"))
    monkeypatch.setattr(cell, "run_train", lambda cfg, key: calls.append("train"))
    monkeypatch.setattr(cell, "run_evaluate", lambda cfg, key: calls.append("evaluate"))
    cfg = ci_config()
    cell.run(cfg, "fashionai-agman")
    assert calls == ["enter", "train", "evaluate"]
    calls.clear()
    cell.run(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, portable=False)), "fashionai-agman")
    assert calls == ["train", "evaluate"]


def test_switching_it_changes_the_config_a_cell_stage_depends_on():
    on = ci_config()
    off = dataclasses.replace(on, train=dataclasses.replace(on.train, portable=False))
    assert on.train.portable  # the ci profile runs portable
    assert cell_params(on, "fashionai-agman")["train"] != cell_params(off, "fashionai-agman")["train"]
