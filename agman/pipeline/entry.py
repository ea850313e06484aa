"""What every stage's entry point shares: logging, the argv check, the config, one-line errors,
JSON outputs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from agman.config import Config, load_config
from agman.io import write_file_atomically

#: The errors that report a problem of the user's inputs (params.yaml, a dataset file, a missing
#: dataset, checkpoint or weights) rather than a bug. Named, not imported: this module is a
#: dependency of every stage, and importing agman.data or agman.models here would make the
#: tables stage depend on them in dvc.yaml.
EXPECTED_ERRORS = frozenset({
    "agman.config.load.ConfigError",
    "agman.data.errors.DataFormatError",
    "agman.data.errors.MissingDataError",
    "agman.data.errors.ArchiveError",
    "agman.data.download.ChecksumError",
    "agman.models.backbone.MissingWeightsError",
    "agman.reports.cell_report.CellFormatError",
    "builtins.FileNotFoundError",
    "builtins.FileExistsError",
})


def setup_logging() -> None:
    # Under torchrun only rank 0 says what happens; the other ranks report warnings and errors.
    level = logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def _expected(err: BaseException, also: tuple[type[BaseException], ...]) -> bool:
    return isinstance(err, also) or any(f"{c.__module__}.{c.__qualname__}" in EXPECTED_ERRORS
                                        for c in type(err).__mro__)


@contextlib.contextmanager
def one_line_errors(*also: type[BaseException]) -> Iterator[None]:
    """An expected error (``EXPECTED_ERRORS``, or a subclass of one of ``also``) ends the process
    with status 2 and one line on stderr, ``error: <file>: <key or line>: <what>`` (the messages
    name their file and key already); ``AGMAN_DEBUG=1`` lets it through with its traceback.
    Any other exception is a bug and keeps its traceback."""
    try:
        yield
    except Exception as err:
        if os.environ.get("AGMAN_DEBUG", "0") not in ("", "0") or not _expected(err, also):
            raise
        # str(KeyError) quotes its message; a multi-line message (instructions) is folded.
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(2) from None


def stage_main(run: Callable[[Config, str], object], usage: str, argv: list[str] | None = None) -> None:
    """A per-slot or per-cell stage's entry point, ``python -m stages.<stage> <key>``: calls
    ``run(config, key)``; anything but one argument exits with ``usage``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit(usage)
    setup_logging()
    with one_line_errors():
        run(load_config(), args[0])


def global_main(run: Callable[[Config], object]) -> None:
    """The entry point of a stage that runs once (tables, figures): ``run(config)``."""
    setup_logging()
    with one_line_errors():
        run(load_config())


def write_json(path: Path, data) -> None:
    """A stage's JSON output, sorted keys, written so that readers never see half of it."""
    write_file_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
