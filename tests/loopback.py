"""A file server on 127.0.0.1 that the download tests start: nothing leaves the machine."""

from __future__ import annotations

import http.server
import threading


class LoopbackServer:
    """Serves ``files`` (name -> bytes, changeable while running) over HTTP, honouring
    ``Range: bytes=<start>-`` as a resuming client sends it; records each request's path and
    Range header in ``requests``. Use as a context manager."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                header = self.headers.get("Range")
                server.requests.append((self.path, header))
                body = server.files.get(self.path.lstrip("/"))
                start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
                if body is None or (header and start >= len(body)):
                    self.send_response(404 if body is None else 416)  # 416: nothing left after start
                    self.end_headers()
                    return
                self.send_response(206 if header else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{name}"

    @property
    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self.files}

    def __enter__(self) -> LoopbackServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
