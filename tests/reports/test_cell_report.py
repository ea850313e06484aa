"""The per-cell report: the exact files the cell stage writes, read back as the tables read them,
and a module light enough for the cell stage (no plotting, no table renderer)."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from agman.experiments import TABLES
from agman.reports.cell_report import CELL_FILES, CellFormatError, cell_folder, collect, write_cell_report
from tests.helpers import ROOT

TABLE4 = next(spec for spec in TABLES if spec.number == 4)


def zappos_report(variant: str, accuracy: float) -> tuple[dict, pd.DataFrame, dict]:
    metrics = {"accuracy": accuracy, "loss": 0.0391, "per_condition": {"class": accuracy}, "n_triplets": 4}
    per_item = pd.DataFrame({"condition": ["class", "closure", "gender", "heel"], "correct": [1, 1, 0, 1],
                             "loss": [0.01, 0.02, 0.1, 0.0]})
    info = {"dataset": "zappos", "source": "demo_zappos", "variant": variant, "seed": 0, "profile": "test",
            "attributes": []}
    return metrics, per_item, info


def test_the_files_are_written_exactly_and_replace_the_folder(tmp_path):
    folder = cell_folder(tmp_path, "zappos", "agman", 0)
    folder.mkdir(parents=True)
    (folder / "stale.txt").write_text("from an older run")
    metrics, per_item, info = zappos_report("agman", 0.75)
    write_cell_report(folder, metrics, per_item, info)
    assert sorted(p.name for p in folder.iterdir()) == sorted(CELL_FILES)
    assert (folder / "metrics.json").read_text() == json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    assert (folder / "cell.json").read_text() == json.dumps(info, indent=2, sort_keys=True) + "\n"
    assert (folder / "per_item.csv").read_text() == per_item.to_csv(index=False)
    assert list(tmp_path.rglob("*.tmp-*")) == []


def test_written_cells_read_back_as_the_tables_read_them(tmp_path):
    for variant in TABLE4.rows:
        write_cell_report(cell_folder(tmp_path, "zappos", variant, 0), *zappos_report(variant, 0.75))
    cells = collect(tmp_path, (0,), [TABLE4])
    assert sorted(cells) == sorted(("zappos", v, 0) for v in TABLE4.rows)
    cell = cells[("zappos", "agman", 0)]
    assert (cell.name, cell.source, cell.attributes, cell.metrics["accuracy"]) == \
        ("zappos/agman/seed0", "demo_zappos", (), 0.75)
    assert list(cell.per_item["correct"]) == [1, 1, 0, 1]


def test_a_report_in_the_wrong_folder_is_refused(tmp_path):
    for variant in TABLE4.rows:
        write_cell_report(cell_folder(tmp_path, "zappos", variant, 0), *zappos_report(variant, 0.75))
    write_cell_report(cell_folder(tmp_path, "zappos", "csn", 0), *zappos_report("agman", 0.75))
    with pytest.raises(CellFormatError, match="zappos/csn/seed0: .*says variant = 'agman'"):
        collect(tmp_path, (0,), [TABLE4])


def test_the_cell_stage_imports_no_plotting_and_no_table_renderer():
    code = ("import sys, agman.reports.cell_report; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('agman', 'matplotlib', 'torch', 'yaml')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['agman', 'agman.experiments', 'agman.io', 'agman.reports', 'agman.reports.cell_report']"
