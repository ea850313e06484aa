"""Resumable downloads with a recorded size and SHA-256 (the `download` stage's fetcher).

``fetch(url, dest)`` continues a partial ``dest.part`` with an HTTP Range request when the
server allows it, and renames the file into place only once it is complete. The size and
SHA-256 of the first complete download are written to ``<dest>.sha256``; later calls verify the
file against that record (or against ``expected_sha256`` when the caller pins one), so a
corrupted or swapped archive is reported, never silently used.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from agman.io import sha256_file, write_file_atomically

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """A downloaded file does not match its recorded or pinned size/SHA-256."""


def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def verify(dest: Path, expected_sha256: str | None = None) -> dict:
    """Check ``dest`` against the pinned hash or its record; record it when there is none."""
    actual = {"size": dest.stat().st_size, "sha256": sha256_file(dest)}
    record = _record_path(dest)
    expected = {"sha256": expected_sha256} if expected_sha256 else None
    if expected is None and record.is_file():
        expected = json.loads(record.read_text())
    if expected is not None:
        for key, value in expected.items():
            if actual.get(key) != value:
                raise ChecksumError(f"{dest}: {key} is {actual.get(key)}, expected {value} "
                                    f"(from {'the pinned value' if expected_sha256 else record}); "
                                    "delete the file to download it again")
    else:
        write_file_atomically(record, json.dumps(actual) + "\n")
        log.info("recorded size %d and sha256 %s of %s in %s", actual["size"], actual["sha256"], dest, record)
    return actual


def fetch(url: str, dest: str | Path, expected_sha256: str | None = None, timeout: float = 60.0) -> dict:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), then verify it; returns size and hash."""
    dest = Path(dest)
    if dest.is_file():
        return verify(dest, expected_sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part file already holds everything
            os.replace(part, dest)
            return verify(dest, expected_sha256)
        raise RuntimeError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise RuntimeError(f"{url}: cannot download ({err}); {part} keeps what has arrived") from None
    with response:
        resumed = have and response.status == 206
        if have and not resumed:
            log.info("%s: server ignored the range request; downloading from the start", url)
        with part.open("ab" if resumed else "wb") as fh:
            for block in iter(lambda: response.read(CHUNK), b""):
                fh.write(block)
    os.replace(part, dest)
    return verify(dest, expected_sha256)
