"""The experiment catalogue: which tables each cell feeds, which cells the tables need, and that
the catalogue is consistent and light enough for training to import."""

import subprocess
import sys

from agman.experiments import BASELINES, SLOTS, TABLES, VARIANT_LABELS, required_cells, tables_of
from tests.helpers import ROOT


def test_tables_of_a_cell():
    assert tables_of("fashionai", "agman") == (2, 5, 7)
    assert tables_of("deepfashion", "aga_only") == (6, 10)
    assert tables_of("deepfashion", "asenet_v2") == (3, 10)
    assert tables_of("zappos", "csn") == (4,)
    assert tables_of("zappos", "no_sa") == ()
    assert tables_of("fashionai", "unknown_variant") == ()


def test_required_cells_in_first_use_order():
    cells = required_cells()
    assert len(cells) == len(set(cells)) == 11 + 11 + 4
    assert cells[:4] == [("fashionai", v) for v in BASELINES + ("agman",)]
    assert {v for slot, v in cells if slot == "zappos"} == {*BASELINES, "agman"}
    assert required_cells(t for t in TABLES if t.number == 9) == [("fashionai", "asenet_v2"),
                                                                  ("fashionai", "attnfashion"),
                                                                  ("fashionai", "aga_only")]


def test_every_table_is_labelled_and_ticked():
    assert [spec.number for spec in TABLES] == list(range(2, 11))
    for spec in TABLES:
        assert spec.slot in SLOTS, spec.number
        assert all(variant in VARIANT_LABELS for variant in spec.rows), spec.number
        if spec.marks:
            assert set(spec.ticks) == set(spec.rows), spec.number
            assert all(len(spec.ticks[v].split()) == len(spec.marks) for v in spec.rows), spec.number
    assert [spec.number for spec in TABLES if spec.significance] == [2, 3, 4]


def test_importing_the_catalogue_loads_nothing_but_the_standard_library():
    code = ("import sys, agman.experiments; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('agman', 'numpy', 'pandas', 'torch', 'yaml')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['agman', 'agman.experiments']"
