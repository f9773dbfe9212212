"""uvicorn's HTTP protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections, but a client that trickles header
lines keeps its connection (and a slot of the concurrency cap) for as long as it
likes: 300 such TLS connections stayed open for 120 s. Here a request's headers
must be complete within `header_timeout_s` of its first byte (or of the
connection's opening); otherwise the connection is closed. Bodies are not timed:
a slow upload over a slow link is legitimate, and the connection cap
(`[http] max_connections`, uvicorn's limit_concurrency, answered 503 beyond it)
bounds what slow uploads can hold.

It also ends connections it closes. Over TLS, asyncio's close waits up to 30 s for
the client's close_notify, which an idle pooled client (a peer's httpx, a cache)
never sends until it reads again: every stop waited out uvicorn's graceful
timeout and logged an ERROR. A connection closed by this side is aborted once
its last bytes left and the client had CLOSE_GRACE_S to read them; an idle one
at shutdown, at once.

And it sends a response's head and its body in one write. uvicorn writes them
apart, and each write to a socket is a system call in which loopback (or the NIC's
driver) does the sending: a manifest GET paid two, about a fifth of its CPU. The
head is held until the body's first bytes are written, or until the end of the
event loop's current turn (a HEAD answer, or a stream whose first chunk is slow).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from replica.client_certs import pem_of

log = logging.getLogger("qreg.http")


CLOSE_GRACE_S = 1.0


class _OneWriteTransport:
    """A transport that joins a response's head with the write that follows it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        elif data[:9] == b"HTTP/1.1 " and data[9:12] != b"100" and data[-4:] == b"\r\n\r\n":
            self._held = bytes(data)  # a head (never a 100 Continue the client waits for)
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class _HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _closed = False

    _client_cert: list[str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _OneWriteTransport(transport, self.loop)  # type: ignore[assignment]
        tls = transport.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if der:  # checked by the handshake against the trusted client CAs
            self._client_cert = [pem_of(der)]
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._client_cert:  # the ASGI TLS extension, for client-certificate sign-in
            extensions = dict(self.scope.get("extensions") or {})
            extensions["tls"] = {"client_cert_chain": self._client_cert}
            self.scope["extensions"] = extensions
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        super().shutdown()
        if idle:
            self.transport.abort()  # nothing in flight: no close_notify to wait for

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            self._end_when_flushed()

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._end_when_flushed()

    def _end_when_flushed(self) -> None:
        if self._closed:
            return
        if self.transport.get_write_buffer_size():
            self.loop.call_later(0.1, self._end_when_flushed)
        else:
            self.loop.call_later(CLOSE_GRACE_S, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self._closed:
            self.transport.abort()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        log.warning(
            "closed a connection whose request headers took over %.0f s",
            self.header_timeout_s,
            extra={"fields": {"event": "slow_headers", "client": (self.client or ("", 0))[0]}},
        )
        # abort, not close: a TLS close waits up to 30 s for the client's close_notify,
        # which a client that only writes never sends.
        self.transport.abort()


def with_header_deadline(header_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http=`, with this deadline."""
    return type(
        "HeaderDeadlineProtocol", (_HeaderDeadlineProtocol,), {"header_timeout_s": header_timeout_s}
    )
