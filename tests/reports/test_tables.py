"""Tables 2-10 from hand-written cells: layout, marks, statistics, missing cells, paper numbers."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from agman.data.deepfashion import DEEPFASHION_TYPES
from agman.data.fashionai import FASHIONAI
from agman.experiments import TABLES
from agman.reports.cell_report import CellFormatError, collect
from agman.reports.tables import render_tables, write_tables
from agman.reports.tables.build import PAPER_TABLES_PATH, build_table, load_paper_tables, rank_marks
from agman.reports.tables.render import to_csv, to_latex, to_markdown
from agman.reports.tables.statistics import paired_bootstrap
from tests.helpers import external

PAPER_TEXT = external("AGMAN_PAPER_TEXT")  # the paper as plain text; its table test runs when set

ALL_VARIANTS = ("csn", "asenet_v2", "attnfashion", "agman", "aga_only", "aga_hier", "aga_cls",
                "no_asa", "no_sa", "no_aca", "no_ca")
# FashionAI's slot holds the demo stand-in (its `texture` is not in the paper, so that column has
# no paper number); DeepFashion and Zappos50k are "real" here.
SOURCES = {"fashionai": "demo_fashionai", "deepfashion": "deepfashion", "zappos": "zappos"}
ATTRIBUTES = {"fashionai": ["sleeve_length", "skirt_length", "neckline_design", "texture"],
              "deepfashion": list(DEEPFASHION_TYPES), "zappos": []}
N_QUERIES = 12
# Table 4, chosen by hand: CSN and AG-MAN tie for the best accuracy; AG-MAN has the lowest loss.
ZAPPOS = {"csn": (0.0400, 0.93), "asenet_v2": (0.0450, 0.925), "attnfashion": (0.0600, 0.91), "agman": (0.0390, 0.93)}
RESAMPLES = 1000


def write_cell(root: Path, slot: str, variant: str, seed: int, metrics: dict, per_item: str) -> None:
    folder = root / slot / variant / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "cell.json").write_text(json.dumps({
        "dataset": slot, "source": SOURCES[slot], "variant": variant, "seed": seed, "profile": "test",
        "attributes": ATTRIBUTES[slot]}))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "per_item.csv").write_text(per_item)


def make_cells(root: Path, seeds=(0,)) -> Path:
    """Every cell of Tables 2-10. Retrieval scores rise with the variant's position in
    ALL_VARIANTS and by 2 MAP points per seed; AG-MAN's per-query AP is AttnFashion's (the best
    baseline) plus exactly 0.10, so its bootstrap is degenerate and computable by hand."""
    for seed in seeds:
        for slot in ("fashionai", "deepfashion"):
            attributes = ATTRIBUTES[slot]
            for i, variant in enumerate(ALL_VARIANTS):
                per = {a: 0.40 + 0.01 * i + 0.001 * j + 0.02 * seed for j, a in enumerate(attributes)}
                offset = 0.02 + 0.10 if variant == "agman" else 0.01 * i
                rows = [f"{attributes[k % len(attributes)]},{0.2 + 0.05 * (k % 7) + offset!r},0.3125"
                        for k in range(N_QUERIES)]
                write_cell(root, slot, variant, seed,
                           {"map": 0.40 + 0.01 * i + 0.02 * seed, "map_macro": 0.0, "map_per_attribute": per,
                            "map_chance": 0.3125, "n_queries": N_QUERIES},
                           "attribute,ap,chance_ap\n" + "\n".join(rows) + "\n")
        for variant, (loss, accuracy) in ZAPPOS.items():
            # CSN and AG-MAN answer the same 93 of 100 triplets correctly: a difference of exactly 0.
            correct = [int(k < round(100 * accuracy)) for k in range(100)]
            rows = [f"{'class closure gender heel'.split()[k % 4]},{c},{loss}" for k, c in enumerate(correct)]
            write_cell(root, "zappos", variant, seed,
                       {"accuracy": accuracy, "loss": loss, "per_condition": {}, "n_triplets": 100},
                       "condition,correct,loss\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture
def cells_root(tmp_path) -> Path:
    return make_cells(tmp_path / "cells")


def table(cells_root: Path, number: int, seeds=(0,)):
    spec = next(s for s in TABLES if s.number == number)
    return build_table(spec, collect(cells_root, seeds), seeds, load_paper_tables(), resamples=RESAMPLES)


TABLE4_MD = """\
## Table 4. Triplet relation prediction on Zappos50k

Average triplet loss over the test triplets (lower is better) and prediction accuracy (%). One run per method (seed 0). \
Best per column in **bold**, second best <u>underlined</u>; under each number, the paper's value and Δ = ours − paper.

| Method | Average loss ↓ | Prediction accuracy (%) ↑ |
| :-- | --: | --: |
| CSN | <u>0.0400</u><br><sub>paper 0.0393, Δ +0.0007</sub> | **93.00**<br><sub>paper 93.14, Δ -0.14</sub> |
| ASENet_V2 | 0.0450<br><sub>paper 0.0430, Δ +0.0020</sub> | <u>92.50</u><br><sub>paper 92.54, Δ -0.04</sub> |
| AttnFashion | 0.0600<br><sub>paper 0.0664, Δ -0.0064</sub> | 91.00<br><sub>paper 91.37, Δ -0.37</sub> |
| AG-MAN (ours) | **0.0390**<br><sub>paper 0.0390, Δ +0.0000</sub> | **93.00**<br><sub>paper 93.32, Δ -0.32</sub> |

Chance: random embeddings predict 50.00% of the triplets. Each row minus chance, 95% CI (paired bootstrap over 100 \
triplets, 1,000 resamples): above chance: CSN +43.00 [+37.98, +48.00], ASENet_V2 +42.00 [+36.00, +47.00], AttnFashion \
+41.00 [+35.00, +46.00], AG-MAN (ours) +43.00 [+37.98, +48.00].

AG-MAN vs CSN: +0.00 accuracy points, 95% CI [+0.00, +0.00], p = 1.0000 (paired bootstrap over 100 triplets, \
1,000 resamples)
"""  # noqa: E501 (the rendered table, one line per paragraph)


def test_table4_markdown_exact(cells_root):
    """Lower-is-better loss, a tie for best accuracy (both bold, next distinct value underlined),
    paper numbers and deltas, and the significance of two identical answer sheets (p = 1)."""
    assert to_markdown(table(cells_root, 4)) == TABLE4_MD


def test_clearly_better_significance_and_demo_note(cells_root):
    md = to_markdown(table(cells_root, 2))
    # Every paired difference is +10 points: the interval collapses and p is its floor 2 / (B + 1).
    assert ("AG-MAN vs AttnFashion: +10.00 MAP points, 95% CI [+10.00, +10.00], p = 0.0020 "
            "(paired bootstrap over 12 queries, 1,000 resamples)") in md
    assert "Demo data: these cells ran on demo_fashionai" in md and "differences are not meaningful" in md
    # AG-MAN's APs are 0.32 + 0.05 (k mod 7) for k = 0..11 (mean 0.44917), each against a chance AP of 0.3125:
    # +13.67 points; CSN's are 0.12 lower: +1.67, whose interval includes 0.
    assert ("Chance: a random ranking scores an expected MAP of 31.25 on this test split. Each row minus chance, "
            "95% CI (paired bootstrap over 12 queries, 1,000 resamples): above chance: AG-MAN (ours) +13.67") in md
    assert "not clearly above: CSN +1.67" in md
    # The demo's `texture` is not a FashionAI column of the paper's; the other three are.
    agman = next(line for line in md.splitlines() if line.startswith("| AG-MAN"))
    assert agman.count("paper –") == 1 and "paper 55.0840, Δ -12.0840" in agman  # sleeve_length: 43.00 - 55.0840
    assert "Demo data" not in to_markdown(table(cells_root, 3))


def test_two_seeds_mean_and_sample_std(tmp_path):
    root = make_cells(tmp_path / "cells", seeds=(0, 1))
    md = to_markdown(table(root, 2, seeds=(0, 1)))
    agman = next(line for line in md.splitlines() if line.startswith("| AG-MAN"))
    # MAP 43.00 and 45.00 -> mean 44.00, sample std sqrt(2) = 1.41; the best MAP, so bold.
    assert agman.endswith("| **44.0000 ± 1.4142**<br><sub>paper 62.8788, Δ -18.8788</sub> |")
    assert "Mean ± sample standard deviation over seeds 0, 1." in md
    assert "over 12 queries averaged over seeds 0, 1; 1,000 resamples" in md


def test_csv_columns(tmp_path):
    root = make_cells(tmp_path / "cells", seeds=(0, 1))
    rows = list(csv.DictReader(io.StringIO(to_csv(table(root, 4, seeds=(0, 1))))))
    assert list(rows[0]) == ["variant", "method", "loss", "loss_std", "loss_paper", "loss_delta",
                             "accuracy", "accuracy_std", "accuracy_paper", "accuracy_delta"]
    assert rows[3] == {"variant": "agman", "method": "AG-MAN (ours)", "loss": "0.0390", "loss_std": "0.0000",
                       "loss_paper": "0.0390", "loss_delta": "0.0000", "accuracy": "93.00", "accuracy_std": "0.00",
                       "accuracy_paper": "93.32", "accuracy_delta": "-0.32"}
    ablation = list(csv.DictReader(io.StringIO(to_csv(table(root, 5, seeds=(0, 1))))))
    assert [r["Hierarchical feature"] for r in ablation] == ["false", "true", "false", "true"]
    assert ablation[0]["texture_paper"] == "" and ablation[0]["map_paper"] == "61.9679"


def test_latex_booktabs_with_marks(cells_root):
    tex = to_latex(table(cells_root, 5))
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\begin{tabular}{lcccrrrrr}" in tex
    assert r"\textbf{46.0000} {\scriptsize (62.2951, $-16.2951$)}" in tex  # AGA + classification: best MAP
    assert r"\underline{" in tex and r"\checkmark" in tex
    assert r"95\% CI" in to_latex(table(cells_root, 2))  # notes are escaped


def test_rank_marks_ties_and_direction():
    assert rank_marks([1.0, 3.0, 3.0, 2.0]) == ["", "best", "best", "second"]
    assert rank_marks([0.04, 0.039, 0.05, 0.04], lower_is_better=True) == ["second", "best", "", "second"]
    assert rank_marks([5.0, 5.0]) == ["best", "best"]


def test_paired_bootstrap_hand_computed_cases():
    scores = np.linspace(0.0, 100.0, 50)
    same = paired_bootstrap(scores, scores, resamples=2000)
    assert (same.difference, same.low, same.high, same.p_value, same.n_items) == (0.0, 0.0, 0.0, 1.0, 50)
    noise = np.random.default_rng(1).normal(0.0, 1.0, 400)
    better = paired_bootstrap(scores[:40].repeat(10) + 5.0 + noise, scores[:40].repeat(10), resamples=2000)
    assert better.difference == pytest.approx(5.0 + noise.mean())
    assert 4.5 < better.low < better.difference < better.high < 5.5
    assert better.p_value == pytest.approx(2 / 2001)  # no resample reaches 0
    balanced = paired_bootstrap(np.tile([1.0, -1.0], 100), np.zeros(200), resamples=2000)
    assert balanced.difference == 0.0 and balanced.low < 0 < balanced.high and balanced.p_value > 0.5
    # Triplet-like 0/1 scores (few distinct differences): the spread matches the normal
    # approximation sd / sqrt(n) of a mean.
    rng = np.random.default_rng(2)
    ours, theirs = rng.integers(0, 2, 1600), rng.integers(0, 2, 1600)
    binary = paired_bootstrap(ours, theirs, resamples=4000)
    half_width = 1.96 * np.std(ours - theirs, ddof=1) / np.sqrt(1600)
    assert binary.difference == pytest.approx(np.mean(ours - theirs))
    assert (binary.high - binary.low) / 2 == pytest.approx(half_width, rel=0.1)
    again = paired_bootstrap(scores[:40].repeat(10) + 5.0 + noise, scores[:40].repeat(10), resamples=2000)
    assert again == better  # seeded: the report is reproducible


def test_missing_cells_are_all_listed_with_their_stage(cells_root):
    shutil.rmtree(cells_root / "fashionai" / "csn" / "seed0")
    (cells_root / "deepfashion" / "no_sa" / "seed0" / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError) as info:
        collect(cells_root, (0,))
    message = str(info.value)
    assert "2 of the 26 evaluated cells" in message
    assert "fashionai/csn/seed0 (no folder" in message and "dvc repro cell@fashionai-csn" in message
    assert "deepfashion/no_sa/seed0 (no metrics.json" in message and "cell@deepfashion-no_sa" in message


def test_missing_attribute_value_names_cell_and_attribute(cells_root):
    path = cells_root / "fashionai" / "aga_hier" / "seed0" / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["map_per_attribute"]["skirt_length"]
    path.write_text(json.dumps(metrics))
    with pytest.raises(CellFormatError, match=r"fashionai/aga_hier/seed0: .*attribute 'skirt_length'"):
        collect(cells_root, (0,))


def test_cells_without_a_chance_level_name_the_file(cells_root):
    """Retrieval cells evaluated before the chance level was reported must be re-evaluated."""
    path = cells_root / "deepfashion" / "csn" / "seed0" / "per_item.csv"
    path.write_text("\n".join(line.rsplit(",", 1)[0] for line in path.read_text().splitlines()) + "\n")
    with pytest.raises(CellFormatError, match=r"deepfashion/csn/seed0: .*per_item.csv has no column 'chance_ap'"):
        collect(cells_root, (0,))


def test_unpaired_items_are_refused(cells_root):
    path = cells_root / "zappos" / "csn" / "seed0" / "per_item.csv"
    path.write_text(path.read_text().replace("closure", "gender", 1))
    with pytest.raises(CellFormatError, match="zappos/agman/seed0 .* zappos/csn/seed0 .* cannot be paired"):
        render_tables(cells_root, resamples=RESAMPLES)


def test_write_tables_replaces_its_folder(cells_root, tmp_path):
    out = tmp_path / "reports" / "tables"
    paths = write_tables(cells_root, out, resamples=RESAMPLES)
    expected = {f"table{n}.{ext}" for n in range(2, 11) for ext in ("md", "csv", "tex")} | {"README.md"}
    assert {p.name for p in paths} == expected == {p.name for p in out.iterdir()}
    readme = (out / "README.md").read_text()
    assert "dvc repro tables" in readme
    positions = [readme.index(f"## Table {n}. ") for n in range(2, 11)]
    assert positions == sorted(positions)
    assert (out / "table4.md").read_text() == TABLE4_MD
    write_tables(cells_root, out, resamples=RESAMPLES)  # a rerun replaces the folder
    assert {p.name for p in out.iterdir()} == expected
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        write_tables(cells_root, out, resamples=RESAMPLES)


def test_paper_tables_cover_every_row_and_column():
    paper = yaml.safe_load(PAPER_TABLES_PATH.read_text())
    columns = {"fashionai": [a.name for a in FASHIONAI] + ["map"], "deepfashion": list(DEEPFASHION_TYPES) + ["map"],
               "zappos": ["loss", "accuracy"]}
    for spec in TABLES:
        rows = paper[f"table{spec.number}"]
        assert list(rows) == list(spec.rows), spec.number
        assert all(list(values) == columns[spec.slot] for values in rows.values()), spec.number


def _printed_rows(text: str, number: int) -> list[list[str]]:
    """The numbers of a table's body rows in the paper text, as printed (underline tags dropped)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"TABLE {number}."))
    rows = []
    for line in lines[start + 1:]:
        numbers = re.findall(r"\d+\.\d+", line.replace("<u>", "").replace("</u>", ""))
        if numbers:
            rows.append(numbers)
        elif rows:
            break
    return rows


@pytest.mark.skipif(PAPER_TEXT is None or not PAPER_TEXT.is_file(),
                    reason="set AGMAN_PAPER_TEXT to the paper as plain text")
def test_paper_tables_match_the_paper_text_digit_for_digit():
    text = PAPER_TEXT.read_text(encoding="utf-8")
    paper = yaml.safe_load(PAPER_TABLES_PATH.read_text())
    for spec in TABLES:
        printed = _printed_rows(text, spec.number)
        ours = [list(values.values()) for values in paper[f"table{spec.number}"].values()]
        as_printed = [[f"{v:.{len(p.split('.')[1])}f}" for v, p in zip(row, prow, strict=True)]
                      for row, prow in zip(ours, printed, strict=True)]
        assert as_printed == printed, f"Table {spec.number}"
    # A few by eye, straight from the text.
    assert paper["table2"]["agman"]["map"] == 62.8788
    assert paper["table4"]["agman"]["loss"] == 0.0390
    assert paper["table8"]["no_asa"]["texture"] == 14.6402
    assert paper["table9"]["aga_only"]["collar_design"] == 71.2480



def test_the_papers_numbers_are_printed_with_the_decimals_the_paper_prints():
    """Each value of paper_tables.yaml, as written there (the paper's digits), has as many decimals
    as its table column prints, so "paper 62.8788" is never rounded to "62.88"."""
    import re

    from agman.reports.tables.build import PAPER_TABLES_PATH, columns_for

    decimals = {c.key: c.decimals for c in columns_for("fashionai", ["x"])} | \
        {c.key: c.decimals for c in columns_for("zappos", [])}
    table = None
    for line in PAPER_TABLES_PATH.read_text().splitlines():
        if re.match(r"table\d+:", line):
            table = int(line[5:line.index(":")])
        for key, text in re.findall(r"(\w+): (-?\d+\.\d+)", line):
            expected = decimals.get(key, decimals["x"])  # per-attribute columns print as MAP does
            assert len(text.split(".")[1]) == expected, (table, key, text)


def test_paired_bootstrap_resamples_exactly_the_items_a_plain_index_draw_picks():
    """The tallied draws give the interval of the straightforward bootstrap (indices drawn from
    default_rng(seed), differences gathered and averaged) up to rounding, and repeat calls reuse them."""
    rng = np.random.default_rng(1)
    ours, theirs = rng.random(700), rng.random(700)
    d = ours - theirs
    draws = np.random.default_rng(0).integers(0, len(d), size=(3000, len(d)))
    plain = d[draws].mean(axis=1)
    for _ in range(2):
        b = paired_bootstrap(ours, theirs, resamples=3000, seed=0)
        assert b.low == pytest.approx(np.quantile(plain, 0.025), abs=1e-12)
        assert b.high == pytest.approx(np.quantile(plain, 0.975), abs=1e-12)
