"""Writing files and folders so that readers never see half of one; a file's digest."""

from __future__ import annotations

import hashlib
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


def write_file_atomically(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``<path>.tmp-<pid>`` and rename it over ``path`` (making its folder): an
    interrupted run leaves the old file or the new one, never half of one."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
