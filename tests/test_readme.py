"""The commands README.md shows are the commands the test suite runs.

Every command in a ```bash block of the README must either be run as written by the test that
RUN_BY names (the test's source holds the command as one string, or as the list of its words), or
say in its comment that it needs the real data or a GPU. A command added to the README without
either fails here, and so does an entry of RUN_BY whose command has left the README or whose test
no longer runs it. Most of the tests named are in tests/pipeline/test_e2e.py, on the ci profile.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
from functools import cache

import pytest

from agman.experiments import BASELINES, SLOTS
from tests.helpers import ROOT

README = ROOT / "README.md"
E2E = "tests/pipeline/test_e2e.py"
HERE = "tests/test_readme.py"

#: README command (as written, comment left out) -> the test that runs it: "<file>::<function>".
RUN_BY = {
    "make repro": f"{HERE}::test_the_make_targets_run_what_the_readme_says",  # .venv, then `dvc repro`
    "make test": f"{HERE}::test_the_make_targets_run_what_the_readme_says",
    "make test-fast": f"{HERE}::test_the_make_targets_run_what_the_readme_says",
    "dvc exp run -S model.aga.sa=false": f"{E2E}::test_readme_switching_sa_off_then_comparing_the_experiments",
    "dvc exp run -S model.aga.sa=false cell@fashionai-agman":
        f"{E2E}::test_an_experiment_on_one_cell_retrains_only_that_cell",
    "mlflow ui --backend-store-uri sqlite:///mlflow.db": f"{E2E}::test_readme_mlflow_ui_serves_the_runs",
    "dvc exp show --no-pager --only-changed --drop "
    "'Created|runs|reports/|build/|data/|stages/|agman/|.*-(csn|asenet_v2|attnfashion|aga_|no_)'":
        f"{E2E}::test_readme_switching_sa_off_then_comparing_the_experiments",
    "dvc metrics diff --no-path --targets reports/metrics/summary.json":
        f"{E2E}::test_readme_switching_sa_off_then_comparing_the_experiments",
    "dvc plots show": f"{E2E}::test_readme_switching_sa_off_then_comparing_the_experiments",
    "agman parallel --gpus 0,1": f"{E2E}::test_readme_agman_parallel_on_two_gpus",
    "dvc exp run -S train.nproc=2 -S train.cuda_graphs=false cell@fashionai-agman":
        f"{E2E}::test_readme_one_cell_on_two_processes",
    "dvc push": f"{E2E}::test_a_clone_pulls_the_matrix_from_a_dvc_remote_and_retrains_nothing",
    "dvc pull": f"{E2E}::test_a_clone_pulls_the_matrix_from_a_dvc_remote_and_retrains_nothing",
}

#: Lines of a bash block that set up the shell rather than run anything, and why no test runs them.
SETUP = {
    "source .venv/bin/activate": "puts .venv/bin first on PATH, as every test's environment does",
}

#: A comment that exempts its command: what it needs that the test suite does not have.
NEEDS = re.compile(r"\bneeds (the real data|a GPU|\d+ GPUs|GPUs)\b")


def split_comment(line: str) -> tuple[str, str]:
    """A shell line's command and its comment ('#' at a word's start, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def readme_commands(text: str) -> list[tuple[int, str, str]]:
    """(line number, command, comment) of every command in the ```bash blocks of ``text``; a
    command continued with a trailing backslash is joined into one."""
    found, language, pending = [], None, None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            language = None if language is not None else (line[3:].strip() or "(none)")
            continue
        if language != "bash" or not line.strip():
            continue
        command, comment = split_comment(line.strip())
        if pending is not None:
            start, before, before_comment = pending
            command, comment = f"{before} {command}".strip(), " ".join(filter(None, (before_comment, comment)))
        else:
            start = number
        if command.endswith("\\"):
            pending = (start, command[:-1].rstrip(), comment)
            continue
        pending = None
        if command:
            found.append((start, " ".join(command.split()), comment))
    return found


@cache
def named_test(ref: str) -> ast.FunctionDef | None:
    path, name = ref.split("::")
    tree = ast.parse((ROOT / path).read_text())
    return next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name), None)


def runs_as_written(function: ast.FunctionDef, command: str) -> bool:
    """Whether ``function`` (its decorators included) holds ``command`` as one string or as the
    list (or tuple) of its words."""
    words = shlex.split(command)
    for node in ast.walk(function):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " ".join(node.value.split()) == command:
            return True
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            if [e.value for e in node.elts] == words:
                return True
    return False


def test_the_command_reader_joins_continued_lines_and_keeps_quoted_hashes():
    text = "\n".join(["```bash", "a --x 'p#q' \\", "    --y z   # needs a GPU", "b  c", "# only a comment",
                      "```", "```text", "not a command", "```"])
    assert readme_commands(text) == [(2, "a --x 'p#q' --y z", "needs a GPU"), (4, "b c", "")]


def test_every_readme_block_says_whether_it_holds_commands():
    """A command hidden in an unlabelled block would escape the check below: every block is
    ```bash (commands) or ```text (output)."""
    languages = re.findall(r"^```(.*)$", README.read_text(), flags=re.M)[::2]
    assert languages and set(languages) <= {"bash", "text"}, languages


def test_every_readme_command_is_run_by_a_test_or_says_what_it_needs():
    missing, not_run = [], []
    for number, command, comment in readme_commands(README.read_text()):
        if command in SETUP or NEEDS.search(comment):
            continue
        ref = RUN_BY.get(command)
        if ref is None:
            missing.append(f"README.md:{number}: {command}")
            continue
        function = named_test(ref)
        if function is None or not runs_as_written(function, command):
            not_run.append(f"README.md:{number}: {command} ({ref} does not run it as written)")
    assert not missing, ("commands no test runs: add each to a test (tests/pipeline/test_e2e.py for the "
                         "pipeline's) and to RUN_BY, or say in its comment that it needs the real data or a GPU:\n"
                         + "\n".join(missing))
    assert not not_run, "\n".join(not_run)


def test_every_command_of_the_list_is_still_in_the_readme():
    shown = {command for _, command, _ in readme_commands(README.read_text())}
    assert not set(RUN_BY) - shown, f"in RUN_BY but no longer in README.md: {sorted(set(RUN_BY) - shown)}"
    assert not set(SETUP) - shown, sorted(set(SETUP) - shown)


@pytest.mark.parametrize("command, recipe", [("make repro", "dvc repro"), ("make test", "-m pytest"),
                                             ("make test-fast", '-m pytest -m "not slow"')])
def test_the_make_targets_run_what_the_readme_says(command, recipe):
    """The quick start's make targets, dry-run (`make -n`): `make repro` ends in the `dvc repro`
    that tests/pipeline/test_e2e.py runs on the ci profile; `make test` and `make test-fast` run
    this suite."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    proc = subprocess.run([*command.split(), "-n"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    recipes = [line for line in proc.stdout.splitlines() if line.strip() and not line.startswith("make")]
    assert recipes and recipes[-1].endswith(recipe), proc.stdout


#: The demo table's method columns -> variants; "chance" is the metrics' own chance level.
DEMO_COLUMNS = {"AG-MAN": "agman", "CSN": "csn", "ASENet_V2": "asenet_v2", "AttnFashion": "attnfashion"}


def demo_table_rows(text: str) -> list[tuple[str, dict[str, str]]]:
    """(slot, {column: shown value}) of each row of the pages' demo tables of Tables 2-4's methods."""
    lines, out = text.splitlines(), []
    for i, line in enumerate(lines):
        if not line.startswith("| slot (stand-in) | AG-MAN | CSN |"):
            continue
        header = [c.strip() for c in line.strip().strip("|").split("|")]
        for row in lines[i + 2:]:
            if not row.startswith("|"):
                break
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            slot = next(s for s, spec in SLOTS.items() if cells[0].startswith(spec.title + ","))
            out.append((slot, dict(zip(header, cells, strict=True))))
    return out


@pytest.mark.parametrize("page", ["README.md", "docs/results.md"])
def test_the_demo_numbers_shown_are_the_committed_reports(page):
    """The demo's headline numbers a page prints are reports/metrics' (seed 0, x 100, 2 decimals),
    so a `make repro` that moves them fails here until the page says the new ones."""
    rows = demo_table_rows((ROOT / page).read_text())
    assert sorted(slot for slot, _ in rows) == sorted(SLOTS), f"{page}: no demo table with a row per slot"
    assert set(DEMO_COLUMNS.values()) == {"agman", *BASELINES}
    wrong = []
    for slot, shown in rows:
        headline = SLOTS[slot].task.headline
        for column, variant in DEMO_COLUMNS.items():
            metrics = json.loads((ROOT / "reports" / "metrics" / f"{slot}-{variant}.json").read_text())
            if shown[column] != f"{100 * metrics[headline]:.2f}":
                wrong.append(f"{slot} {column}: {shown[column]}, reports say {100 * metrics[headline]:.2f}")
        chance = json.loads((ROOT / "reports" / "metrics" / f"{slot}-agman.json").read_text()).get("map_chance", 0.5)
        if float(shown["chance"]) != round(100 * chance, 2):
            wrong.append(f"{slot} chance: {shown['chance']}, reports say {100 * chance:.2f}")
    assert not wrong, f"{page}: " + "; ".join(wrong)
