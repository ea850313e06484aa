"""The ``agman`` command (``[project.scripts]`` in pyproject.toml; also ``python -m agman``).

    agman search --run <run folder or checkpoint> --image <query> --attribute <name> [...]
    agman parallel --gpus 0,1 [--jobs-per-gpu K]     # the table cells several at a time, then dvc repro

The DVC stages have their own entry points (``stages/*.py``).
"""

from __future__ import annotations

import argparse

from agman import search
from agman.pipeline import parallel
from agman.pipeline.entry import one_line_errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agman", description="AG-MAN: fine-grained fashion retrieval")
    commands = parser.add_subparsers(dest="command", required=True)
    search_parser = commands.add_parser(
        "search", help="retrieve the gallery images closest to a query image under one attribute",
        description=search.__doc__.split("\n\n")[0])
    search.add_arguments(search_parser)
    search_parser.set_defaults(handler=search.run_cli)
    parallel_parser = commands.add_parser(
        "parallel", help="train the table cells several at a time (per GPU or on the CPU), then dvc repro",
        description=parallel.__doc__.split("\n\n")[0])
    parallel.add_arguments(parallel_parser)
    parallel_parser.set_defaults(handler=parallel.run)
    args = parser.parse_args(argv)
    # A search's failures all come from its inputs (a missing file, an unknown attribute, an
    # unreadable image): one line naming the cause, not a traceback.
    with one_line_errors(OSError, KeyError, ValueError, RuntimeError):
        args.handler(args)
