"""Writing a folder so that readers never see half of it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def write_folder_atomically(out_dir: str | os.PathLike, render: Callable[[Path], None]) -> None:
    """``render(tmp)`` fills ``<out_dir>.tmp-<pid>``, which then replaces ``out_dir``: an
    interrupted run never leaves a partial ``out_dir`` behind."""
    out = Path(out_dir)
    tmp = out.parent / f"{out.name}.tmp-{os.getpid()}"
    old = out.parent / f"{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        render(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # A directory cannot be renamed over a non-empty one, so the previous dataset is
    # moved aside first and deleted only once the new one is in place.
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
