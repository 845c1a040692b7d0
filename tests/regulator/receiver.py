"""A stand-in for the platform's receiver: a real local HTTP server that un-gzips each batch, checks its
signature and records it; it can be taken down (connection refused) and brought back on the same port."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.regulator.fakes import unpack_for_test

SIGNING_KEY = b"regulator-signing-key-for-tests"


@dataclass
class Received:
    kind: str
    first: int
    last: int
    items: list[dict[str, str]]
    headers: dict[str, str]


@dataclass
class PlatformReceiver:
    port: int = 0
    answer: int = 200
    body: bytes = b'{"code": 0}'
    batches: list[Received] = field(default_factory=list)
    refused_signatures: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/upload"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["content-length"]))
                expected = hmac.new(SIGNING_KEY, raw, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Signature", "")):
                    with receiver._lock:
                        receiver.refused_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if receiver.answer // 100 == 2:
                    with receiver._lock:
                        receiver.batches.append(Received(
                            self.headers["x-upload-type"], int(self.headers["x-sequence-first"]),
                            int(self.headers["x-sequence-last"]), unpack_for_test(gzip.decompress(raw)),
                            {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(receiver.answer)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
