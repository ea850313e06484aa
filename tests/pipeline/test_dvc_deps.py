"""dvc.yaml against the code: every stage depends on all the project code it runs, so that an
edit anywhere in it makes `dvc repro` rerun the stage."""

from __future__ import annotations

import re

import pytest
import yaml

from agman import codegraph
from tests.helpers import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_body(stage: dict) -> dict:
    return stage.get("do", stage)  # a foreach stage's template: code deps do not vary per key


def entry_module(stage: dict) -> str:
    match = re.match(r"python -m (stages\.\w+)", stage_body(stage)["cmd"])
    assert match, f"{stage_body(stage)['cmd']}: not `python -m stages.<stage>`"
    return match.group(1)


def dep_paths(stage: dict) -> list[str]:
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage_body(stage).get("deps", [])]
    return [d.rstrip("/") for d in deps if "${" not in d]


def uncovered(modules: set[str], deps: list[str]) -> list[str]:
    out = []
    for module in sorted(modules):
        path = codegraph.module_file(module).relative_to(ROOT).as_posix()
        if not any(path == d or path.startswith(d + "/") for d in deps):
            out.append(f"{module} ({path})")
    return out


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_every_project_module_it_runs(name):
    stage = STAGES[name]
    missing = uncovered(codegraph.closure([entry_module(stage)]), dep_paths(stage))
    assert not missing, f"stage {name} runs code no dep of it covers: {', '.join(missing)}"


def test_every_dep_of_a_stage_exists():
    for name, stage in STAGES.items():
        for dep in dep_paths(stage):
            if dep.startswith(("agman", "stages")):
                assert (ROOT / dep).exists(), f"stage {name}: dep {dep} does not exist"


def test_the_check_names_the_module_a_stage_misses():
    stage = {"cmd": "python -m stages.tables", "deps": ["stages/tables.py"]}
    missing = uncovered(codegraph.closure([entry_module(stage)]), dep_paths(stage))
    assert "agman.pipeline.tables (agman/pipeline/tables.py)" in missing
    assert "agman.reports.tables (agman/reports/tables/__init__.py)" in missing


def test_the_user_data_of_each_slot_is_a_dep_of_its_download_and_prepare_stages():
    for name in ("download", "prepare"):
        deps = [d if isinstance(d, str) else next(iter(d)) for d in stage_body(STAGES[name])["deps"]]
        assert "data/raw/${key}" in deps, f"stage {name} does not depend on the user's files in data/raw/<slot>/"
    for slot in ("fashionai", "deepfashion", "zappos"):
        assert (ROOT / "data" / "raw" / slot / "README.md").is_file()  # the dep exists under every profile


def test_no_module_of_the_project_is_in_an_import_cycle():
    assert codegraph.import_cycles() == []


def test_no_real_data_module_imports_demo_code():
    real = [m for m in codegraph.project_modules() if m.startswith("agman.data.") and
            not m.startswith("agman.data.demo") and m != "agman.data.registry"]
    for module in real:
        demo = sorted(m for m in codegraph.closure([module]) if m.startswith("agman.data.demo"))
        assert not demo, f"{module} imports demo code: {demo}"


def test_the_training_loop_does_not_import_the_report_renderers_or_the_pipeline():
    from agman.training.loop import training_modules

    modules = training_modules()
    assert not [m for m in modules if m.startswith(("agman.reports", "agman.pipeline", "stages"))]
    assert "agman.models.agman" in modules and "agman.losses.triplet" in modules
    assert not [m for m in modules if m.startswith("agman.evaluation")]  # a change there re-evaluates only
