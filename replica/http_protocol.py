"""uvicorn's HTTP protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections, but a client that trickles header
lines keeps its connection (and a slot of the concurrency cap) for as long as it
likes: 300 such TLS connections stayed open for 120 s. Here a request's headers
must be complete within `header_timeout_s` of its first byte (or of the
connection's opening); otherwise the connection is closed. Bodies are not timed:
a slow upload over a slow link is legitimate, and the connection cap
(`[http] max_connections`, uvicorn's limit_concurrency, answered 503 beyond it)
bounds what slow uploads can hold.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("qreg.http")


class _HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        log.warning("closed a connection whose request headers took over %.0f s",
                    self.header_timeout_s, extra={"fields": {
                        "event": "slow_headers", "client": (self.client or ("", 0))[0]}})
        # abort, not close: a TLS close waits up to 30 s for the client's close_notify,
        # which a client that only writes never sends.
        self.transport.abort()


def with_header_deadline(header_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http=`, with this deadline."""
    return type("HeaderDeadlineProtocol", (_HeaderDeadlineProtocol,),
                {"header_timeout_s": header_timeout_s})
