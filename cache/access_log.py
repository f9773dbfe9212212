"""The cache's request log: one structured line per blob request, written when the
response has ended, with where the bytes came from (disk, or upstream on a miss).

The grant rides in the query string; it is never logged, only the user it names."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("qreg.cache.access")


def note(scope: Scope, **fields: Any) -> None:
    """Add fields to this request's log line (the handler knows the user and source)."""
    scope.setdefault("state", {}).setdefault("access", {}).update(fields)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2/"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status, sent = 0, 0

        async def counting(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            client = scope.get("client")
            fields = {
                "event": "request",
                "method": scope["method"],
                "path": scope["path"],
                "status": status or 500,
                "bytes": sent,
                "ms": round((time.monotonic() - started) * 1000, 1),
                "client": client[0] if client else None,
                **scope.get("state", {}).get("access", {}),
            }
            log.info(
                "%s %s %s", scope["method"], scope["path"], status or 500, extra={"fields": fields}
            )
