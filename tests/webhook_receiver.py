"""A webhook receiver for tests: HTTPS on loopback with its own CA, in a thread. It
keeps every request (time, path, headers, body) and answers each path as told (a
status to give the first N times, then 200)."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from replica import pki


@dataclass
class Received:
    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]
    body: bytes
    wall: float = 0.0  # time.time(), to compare with an event's time

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_with(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("x-qreg-signature-256", ""))


@dataclass
class Receiver:
    directory: str
    received: list[Received] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to give
    ca_pem: str = ""
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        ca, ca_key = pki.create_ca("Webhook Receiver")
        cert, key = pki.issue(ca, ca_key, "127.0.0.1", ["127.0.0.1"])
        os.makedirs(self.directory, exist_ok=True)
        paths = [os.path.join(self.directory, n) for n in ("receiver.crt", "receiver.key")]
        for path, data in zip(paths, (cert, key), strict=True):
            with open(path, "wb") as f:
                f.write(data)
        self.ca_pem = ca.decode()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.received.append(
                        Received(time.monotonic(), self.path,
                                 {k.lower(): v for k, v in self.headers.items()}, body,
                                 time.time())
                    )  # fmt: skip
                    planned = receiver.failures.get(self.path) or []
                    status = planned.pop(0) if planned else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*paths)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]
