"""What every stage's entry point shares: logging, the argv check, the config, JSON outputs."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from agman.config import Config, load_config
from agman.io import write_file_atomically


def setup_logging() -> None:
    # Under torchrun only rank 0 says what happens; the other ranks report warnings and errors.
    level = logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def stage_main(run: Callable[[Config, str], object], usage: str, argv: list[str] | None = None) -> None:
    """A per-slot or per-cell stage's entry point, ``python -m stages.<stage> <key>``: calls
    ``run(config, key)``; anything but one argument exits with ``usage``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit(usage)
    setup_logging()
    run(load_config(), args[0])


def global_main(run: Callable[[Config], object]) -> None:
    """The entry point of a stage that runs once (tables, figures): ``run(config)``."""
    setup_logging()
    run(load_config())


def write_json(path: Path, data) -> None:
    """A stage's JSON output, sorted keys, written so that readers never see half of it."""
    write_file_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
