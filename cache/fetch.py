"""Pull-through: one upstream fetch per blob, however many clients ask at once.

The first miss starts a Flight: it streams the blob from an upstream (a replica of
the cluster, or another cache) into a temporary file, and every client asking for
that blob meanwhile reads the same file as it grows. The last byte is held back
from clients until the whole blob is verified against its digest and committed, so a
corrupt transfer never reaches a client whole.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
from functools import partial
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from cache.store import BoundedStore
from replica.auth import grants
from replica.errors import BlobUnknown, Denied, RegistryError, Unavailable

log = logging.getLogger("qreg.cache")
CHUNK = 1 << 20


class UpstreamError(Exception):
    pass


class Flight:
    """One blob on its way from upstream to disk, readable while it arrives."""

    def __init__(self, digest: str, size: int, path: str) -> None:
        self.digest = digest
        self.size = size
        self.written = 0
        self.done = False
        self.error: str | None = None
        self.changed = asyncio.Condition()
        self.fd = os.open(path, os.O_RDONLY)  # stays valid across the rename at commit
        self.readers = 0
        self.finished = False

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def readable(self) -> int:
        """How far a client may read now: never the last byte before verification."""
        if self.done:
            return self.size
        return min(self.written, self.size - 1)

    def maybe_close(self) -> None:
        if self.finished and self.readers == 0 and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _moved(flight: Flight, position: int) -> bool:
    """A reader at `position` can go on: more is readable, or the fetch failed."""
    return flight.error is not None or flight.readable() > position


class FlightResponse:
    """An ASGI response that follows a Flight to its end."""

    def __init__(self, flight: Flight, headers: dict[str, str], on_bytes: Any) -> None:
        self.flight = flight
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.headers.append((b"content-length", str(flight.size).encode()))
        self.on_bytes = on_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        flight = self.flight
        flight.readers += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            position = 0
            while position < flight.size:
                async with flight.changed:
                    await flight.changed.wait_for(partial(_moved, flight, position))
                if flight.error is not None:
                    # Abort the response: the client sees a short body, never a wrong one.
                    raise UpstreamError(flight.error)
                limit = flight.readable()
                while position < limit:
                    chunk = os.pread(flight.fd, min(CHUNK, limit - position), position)
                    position += len(chunk)
                    self.on_bytes(len(chunk))
                    await send(
                        {
                            "type": "http.response.body",
                            "body": chunk,
                            "more_body": position < flight.size,
                        }
                    )
            if flight.size == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            flight.readers -= 1
            flight.maybe_close()


class Fetcher:
    def __init__(
        self,
        store: BoundedStore,
        upstreams: tuple[str, ...],
        verify: ssl.SSLContext | bool,
        metrics: Any,
    ) -> None:
        self.store = store
        self.upstreams = upstreams
        self.metrics = metrics
        self.flights: dict[str, Flight] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._starting: dict[str, asyncio.Future[Flight]] = {}
        self._client = httpx.AsyncClient(
            verify=verify, timeout=httpx.Timeout(60.0, connect=3.0), follow_redirects=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def flight(self, repository: str, digest: str, grant: str) -> Flight:
        """The flight of this blob: joins one under way, or starts one (one per digest)."""
        if digest in self.flights:
            return self.flights[digest]
        if digest in self._starting:
            return await asyncio.shield(self._starting[digest])
        started: asyncio.Future[Flight] = asyncio.get_running_loop().create_future()
        self._starting[digest] = started
        try:
            flight = await self._start(repository, digest, grant)
            started.set_result(flight)
            return flight
        except BaseException as e:
            started.set_exception(e)
            started.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        finally:
            self._starting.pop(digest, None)

    async def head(self, repository: str, digest: str, grant: str) -> int:
        """The size of a blob the cache does not hold, asked upstream."""
        for url in self._order():
            try:
                r = await self._client.head(
                    f"{url}/v2/{repository}/blobs/{digest}", headers={grants.HEADER: grant}
                )
            except httpx.HTTPError:
                self.metrics.upstream_errors.inc()
                continue
            if r.status_code == 200:
                return int(r.headers["content-length"])
            if r.status_code in (401, 403, 404):
                raise _refused(r)
            self.metrics.upstream_errors.inc()
        raise Unavailable("no upstream answered; the cache serves only what it holds")

    def _order(self) -> list[str]:
        return random.sample(self.upstreams, len(self.upstreams))

    async def _start(self, repository: str, digest: str, grant: str) -> Flight:
        for url in self._order():
            request = self._client.build_request(
                "GET", f"{url}/v2/{repository}/blobs/{digest}", headers={grants.HEADER: grant}
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.HTTPError as e:
                log.warning("upstream %s failed: %s", url, e)
                self.metrics.upstream_errors.inc()
                continue
            if response.status_code != 200:
                await response.aclose()
                if response.status_code in (401, 403, 404):
                    raise _refused(response)
                self.metrics.upstream_errors.inc()
                continue
            size = int(response.headers.get("content-length", "-1"))
            if size < 0 or not self.store.reserve(size):
                await response.aclose()
                raise Unavailable(f"the blob does not fit in this cache ({size} bytes)")
            writer = self.store.writer()
            flight = Flight(digest, size, writer.path)
            self.flights[digest] = flight
            self.metrics.upstream_fetches.inc()
            task = asyncio.create_task(self._run(flight, writer, response))
            self._running.add(task)  # kept: the loop holds tasks weakly
            task.add_done_callback(self._running.discard)
            return flight
        raise Unavailable("no upstream answered; the cache serves only what it holds")

    async def _run(self, flight: Flight, writer: Any, response: httpx.Response) -> None:
        try:
            async for chunk in response.aiter_bytes(CHUNK):
                await asyncio.to_thread(writer.write, chunk)
                flight.written += len(chunk)
                self.metrics.bytes_from_upstream.inc(len(chunk))
                await flight.notify()
            await self.store.commit(writer, flight.digest, flight.size)
            flight.done = True
        except (httpx.HTTPError, RegistryError, OSError) as e:
            flight.error = f"upstream transfer of {flight.digest} failed: {e}"
            log.warning(flight.error)
            self.metrics.upstream_errors.inc()
            writer.discard()
        finally:
            await response.aclose()
            self.store.release(flight.size)
            self.flights.pop(flight.digest, None)
            flight.finished = True
            flight.maybe_close()
            await flight.notify()


def _refused(response: httpx.Response) -> RegistryError:
    if response.status_code == 404:
        return BlobUnknown("the cluster has no such blob")
    return Denied("the cluster refused the grant")
