"""The fetcher against a server on 127.0.0.1 that this test starts: nothing leaves the machine."""

import hashlib

import pytest

from agman.data.download import ChecksumError, fetch
from tests.loopback import LoopbackServer

PAYLOAD = bytes(range(256)) * 400


@pytest.fixture()
def server():
    with LoopbackServer({"archive.zip": PAYLOAD}) as served:
        yield served


def ranges_seen(server: LoopbackServer) -> list[str | None]:
    return [header for _, header in server.requests]


def test_fetch_records_then_verifies(server, tmp_path):
    dest = tmp_path / "archive.zip"
    info = fetch(server.url("archive.zip"), dest)
    assert dest.read_bytes() == PAYLOAD
    assert info == {"size": len(PAYLOAD), "sha256": hashlib.sha256(PAYLOAD).hexdigest()}
    assert (tmp_path / "archive.zip.sha256").is_file()
    assert fetch(server.url("archive.zip"), dest) == info  # second call: verified against the record, no download
    assert ranges_seen(server) == [None]


def test_fetch_resumes_a_partial_download(server, tmp_path):
    dest = tmp_path / "archive.zip"
    (tmp_path / "archive.zip.part").write_bytes(PAYLOAD[:1000])
    fetch(server.url("archive.zip"), dest)
    assert dest.read_bytes() == PAYLOAD
    assert ranges_seen(server) == ["bytes=1000-"]


def test_corrupted_file_is_reported(server, tmp_path):
    dest = tmp_path / "archive.zip"
    fetch(server.url("archive.zip"), dest)
    dest.write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(ChecksumError, match="archive.zip: size|archive.zip: sha256"):
        fetch(server.url("archive.zip"), dest)


def test_pinned_hash_mismatch_and_unreachable_server(server, tmp_path):
    with pytest.raises(ChecksumError, match="pinned value"):
        fetch(server.url("archive.zip"), tmp_path / "a.zip", expected_sha256="0" * 64)
    with pytest.raises(RuntimeError, match="cannot download"):
        fetch("http://127.0.0.1:9/none.zip", tmp_path / "b.zip", timeout=5)
