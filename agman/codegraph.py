"""The project's import graph, read from the source (no module is imported): which project modules
a module runs, and a digest of their code.

Two things rest on it. The DVC graph: every stage must depend on all the project code its entry
module runs (``tests/pipeline/test_dvc_deps.py`` checks ``dvc.yaml`` against ``closure``). The run-reuse
fingerprint of a training run (``agman.training.loop.code_digest``): the code whose change makes a
trained run stale is the closure of the training loop, not a hand-kept list.

An import counts wherever it stands (inside a function too), except under ``if TYPE_CHECKING:``,
which never runs. Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so
those count as well.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

#: The repository root: the folder holding the project's top-level packages.
ROOT = Path(__file__).resolve().parents[1]
#: The project's top-level packages; imports of anything else (torch, the stdlib) are not followed.
PACKAGES = ("agman", "stages")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of a project module (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``)."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Every dotted name an import statement of ``tree`` names, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            # ``from a import b`` may import the submodule a.b
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        stack.extend(ast.iter_child_nodes(node))


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@lru_cache(maxsize=None)
def _direct(name: str, root: Path, parents: bool) -> frozenset[str]:
    path = module_file(name, root)
    if path is None:
        return frozenset()
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for imported in _imported_names(tree, name, path.name == "__init__.py"):
        if imported.split(".")[0] not in PACKAGES:
            continue
        named = _with_parents(imported) if parents else [imported]
        found.update(m for m in named if module_file(m, root) is not None)
    found.discard(name)
    return frozenset(found)


def direct_imports(name: str, root: Path = ROOT, parents: bool = True) -> set[str]:
    """The project modules ``name`` imports itself: with ``parents``, the packages that importing
    them runs too (what executes); without, only the modules its import statements name (the
    design's dependencies, where a cycle means two modules that need each other)."""
    return set(_direct(name, root.resolve(), parents))


def import_cycles(root: Path = ROOT) -> list[list[str]]:
    """Every group of project modules that import each other, directly or through others (the
    strongly connected components of more than one module, or a module importing itself), over
    the named imports (``parents=False``), those inside functions included."""
    graph = {m: direct_imports(m, root, parents=False) for m in project_modules(root)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph has a few hundred nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def closure(modules: Iterable[str], root: Path = ROOT, stop: Iterable[str] = ()) -> set[str]:
    """``modules``, their parent packages and every project module they import, transitively.
    Modules in ``stop`` (or under a package in it) are not entered."""
    stop = tuple(stop)
    stopped = lambda m: any(m == s or m.startswith(s + ".") for s in stop)  # noqa: E731
    todo = [m for start in modules for m in _with_parents(start)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or stopped(name) or module_file(name, root) is None:
            continue
        seen.add(name)
        todo.extend(direct_imports(name, root))
    return seen


def project_modules(root: Path = ROOT) -> list[str]:
    """Every module of the project's packages."""
    names = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _code_only(source: str, filename: str) -> str:
    """The module's syntax tree without docstrings: a comment or docstring edit is no code change."""
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_digest(modules: Iterable[str], root: Path = ROOT) -> str:
    """SHA-256 over the code (syntax trees, docstrings dropped) of ``modules``, by name."""
    digest = hashlib.sha256()
    for name in sorted(modules):
        path = module_file(name, root)
        digest.update(name.encode())
        digest.update(_code_only(path.read_text(), str(path)).encode())
    return digest.hexdigest()
