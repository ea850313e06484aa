"""The import graph read from source: closures, cycles, and the code digest."""

from __future__ import annotations

from pathlib import Path

from agman import codegraph


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_closure_follows_imports_inside_functions_and_parent_packages_but_not_type_checking(tmp_path):
    root = write_package(tmp_path, {
        "agman/__init__.py": "",
        "agman/sub/__init__.py": "",
        "agman/a.py": ("from typing import TYPE_CHECKING\nimport torch\n"
                       "if TYPE_CHECKING:\n    from agman import c\n"
                       "def f():\n    from agman.sub.b import g\n"),
        "agman/sub/b.py": "def g(): pass\n",
        "agman/c.py": "",
    })
    assert codegraph.closure(["agman.a"], root) == {"agman", "agman.a", "agman.sub", "agman.sub.b"}


def test_closure_stops_at_the_named_packages(tmp_path):
    root = write_package(tmp_path, {"agman/__init__.py": "", "agman/a.py": "import agman.b\nimport agman.e.x\n",
                                    "agman/b.py": "", "agman/e/__init__.py": "", "agman/e/x.py": "import agman.c\n",
                                    "agman/c.py": ""})
    assert codegraph.closure(["agman.a"], root, stop=("agman.e",)) == {"agman", "agman.a", "agman.b"}


def test_import_cycles_are_found_through_function_level_imports(tmp_path):
    root = write_package(tmp_path, {"agman/__init__.py": "", "agman/a.py": "import agman.b\n",
                                    "agman/b.py": "def f():\n    from agman import a\n",
                                    "agman/c.py": "import agman.a\n"})
    assert codegraph.import_cycles(root) == [["agman.a", "agman.b"]]


def test_code_digest_ignores_comments_and_docstrings_but_not_code(tmp_path):
    root = write_package(tmp_path, {"agman/__init__.py": "", "agman/a.py": '"""Doc."""\nX = 1  # one\n'})
    before = codegraph.code_digest(["agman.a"], root)
    (root / "agman/a.py").write_text('"""Another doc."""\n# a comment\nX = 1\n')
    assert codegraph.code_digest(["agman.a"], root) == before
    (root / "agman/a.py").write_text('"""Doc."""\nX = 2\n')
    assert codegraph.code_digest(["agman.a"], root) != before
