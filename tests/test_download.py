"""The fetcher against a server on 127.0.0.1 that this test starts: nothing leaves the machine."""

import hashlib
import http.server
import threading

import pytest

from agman.data.download import ChecksumError, fetch

PAYLOAD = bytes(range(256)) * 400


class RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = PAYLOAD
    ranges_seen: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        start = 0
        header = self.headers.get("Range")
        RangeHandler.ranges_seen.append(header)
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(self.payload):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.ranges_seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/archive.zip"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_records_then_verifies(server, tmp_path):
    dest = tmp_path / "archive.zip"
    info = fetch(server, dest)
    assert dest.read_bytes() == PAYLOAD
    assert info == {"size": len(PAYLOAD), "sha256": hashlib.sha256(PAYLOAD).hexdigest()}
    assert (tmp_path / "archive.zip.sha256").is_file()
    assert fetch(server, dest) == info  # second call: verified against the record, no download
    assert RangeHandler.ranges_seen == [None]


def test_fetch_resumes_a_partial_download(server, tmp_path):
    dest = tmp_path / "archive.zip"
    (tmp_path / "archive.zip.part").write_bytes(PAYLOAD[:1000])
    fetch(server, dest)
    assert dest.read_bytes() == PAYLOAD
    assert RangeHandler.ranges_seen == ["bytes=1000-"]


def test_corrupted_file_is_reported(server, tmp_path):
    dest = tmp_path / "archive.zip"
    fetch(server, dest)
    dest.write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(ChecksumError, match="archive.zip: size|archive.zip: sha256"):
        fetch(server, dest)


def test_pinned_hash_mismatch_and_unreachable_server(server, tmp_path):
    with pytest.raises(ChecksumError, match="pinned value"):
        fetch(server, tmp_path / "a.zip", expected_sha256="0" * 64)
    with pytest.raises(RuntimeError, match="cannot download"):
        fetch("http://127.0.0.1:9/none.zip", tmp_path / "b.zip", timeout=5)
