"""A real HTTP receiver for webhooks, in the test's process: it records every request and
answers by path: ``/flaky`` 500 the first time and 200 after, ``/hang`` never (until the
receiver closes), ``/redirect`` a 302 to ``/target``, anything else 200."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.append(Received(self.path, dict(self.headers), body))
                if self.path == "/hang":
                    receiver.closing.wait()
                    return
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/target")
                elif self.path == "/flaky" and receiver.count("/flaky") == 1:
                    self.send_response(500)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, path: str) -> int:
        return sum(1 for r in self.received if r.path == path)

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
