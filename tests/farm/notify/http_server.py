"""A real HTTP server on 127.0.0.1 for webhook tests (channels and the alert outbox)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Server:
    """A real HTTP server whose answer each test sets: status, a delay, and what it received."""

    def __init__(self) -> None:
        self.status = 200
        self.delay_s = 0.0
        self.headers: dict[str, str] = {}
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append((self.path, dict(self.headers), body))
                time.sleep(outer.delay_s)
                self.send_response(outer.status)
                for key, value in outer.headers.items():
                    self.send_header(key, value)
                text = b"ok" if outer.status < 400 else b"invalid_payload"
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *args: None  # type: ignore[method-assign]  # the timed-out client left
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/services/T0/B0/SECRETPATH"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()
