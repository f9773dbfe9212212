"""Moving blob bytes between the network and disk without stalling the event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from replica.blobs.mirror import PeerMirror
from replica.blobs.store import BlobStore, BlobWriter, LocalBlobStore
from replica.errors import BlobUnknown, BlobUploadInvalid

# Bytes gathered before one hand-off to a worker thread: large enough that the
# hop costs nothing, small enough that hashing and writing overlap the network.
_BATCH = 4 << 20
_SLACK = 1 << 20  # what the last chunk of a batch may pass it by
READ_CHUNK = 1 << 20
# Where receive_into leaves the byte count for the metrics of the request.
RECEIVED_KEY = "qreg.received_bytes"


async def receive_into(
    request: Request, writer: BlobWriter, mirror: PeerMirror | None = None
) -> int:
    """Append the request body to `writer` (and hand it to `mirror`'s peers first);
    returns the number of bytes received.

    Hashing and writing run in a worker thread (hashlib and os.write release the
    GIL) while the event loop gathers the next batch.
    """
    write = writer.write if mirror is None else mirrored_write(writer, mirror)
    received = 0
    pending: asyncio.Future[Any] | None = None
    # Two buffers, filled in turn: one is hashed and written in a thread while the
    # other fills, and neither is copied again to be handed over.
    buffers = [bytearray(_BATCH + _SLACK), bytearray(_BATCH + _SLACK)]
    filled = 0

    async def hand_over(data: memoryview) -> None:
        nonlocal pending
        if pending is not None:
            await pending  # the other buffer is free again
        pending = asyncio.ensure_future(asyncio.to_thread(write, data))

    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            received += len(chunk)
            if filled + len(chunk) > len(buffers[0]):  # a chunk larger than usual
                await hand_over(memoryview(buffers[0])[:filled])
                buffers.reverse()
                filled = 0
                if len(chunk) > len(buffers[0]):
                    await hand_over(memoryview(chunk))
                    continue
            buffers[0][filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            if filled >= _BATCH:
                await hand_over(memoryview(buffers[0])[:filled])
                buffers.reverse()
                filled = 0
    except ClientDisconnect:
        if pending is not None:
            await pending
        raise BlobUploadInvalid(
            "the client closed the connection before the body ended", detail={"received": received}
        ) from None
    if pending is not None:
        await pending
    if filled:
        await asyncio.to_thread(write, memoryview(buffers[0])[:filled])
    request.scope[RECEIVED_KEY] = request.scope.get(RECEIVED_KEY, 0) + received
    return received


def mirrored_write(writer: BlobWriter, mirror: PeerMirror) -> Callable[[memoryview], None]:
    def write(data: memoryview) -> None:
        mirror.write(data)  # queued for the peers, so they work while the local disk does
        try:
            writer.write(data)
        except BaseException:
            mirror.abort()  # the peers would hold bytes the local copy lacks
            raise

    return write


class FileRangeResponse:
    """Streams `length` bytes of a file from `offset`, in 1 MiB chunks."""

    def __init__(
        self, path: str, offset: int, length: int, status_code: int, headers: dict[str, str]
    ) -> None:
        self.path = path
        self.offset = offset
        self.length = length
        self.status_code = status_code
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.headers.append((b"content-length", str(length).encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.headers}
        )
        fd = os.open(self.path, os.O_RDONLY)
        try:
            remaining, position = self.length, self.offset
            while remaining > 0:
                # From the page cache a 1 MiB pread takes ~0.1 ms: cheaper inline
                # than a hop to a worker thread.
                chunk = os.pread(fd, min(READ_CHUNK, remaining), position)
                if not chunk:
                    break
                remaining -= len(chunk)
                position += len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
        finally:
            os.close(fd)
        if self.length == 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def store_range_response(
    store: BlobStore,
    digest: str,
    offset: int,
    length: int,
    status_code: int,
    headers: dict[str, str],
) -> FileRangeResponse | StreamingChunks:
    """A range of a blob, from a local file or from the store (object storage). The
    first chunk is read here, so a missing or unreachable blob is a proper error."""
    if isinstance(store, LocalBlobStore):
        return FileRangeResponse(store.path(digest), offset, length, status_code, headers)
    chunks = store.read(digest, offset, length)
    try:
        first = await asyncio.to_thread(next, chunks, b"")
    except FileNotFoundError:
        raise BlobUnknown("the blob is missing from storage", detail={"digest": digest}) from None
    return StreamingChunks(first, chunks, length, status_code, headers)


class StreamingChunks:
    """Sends a first chunk, then the rest of a blocking iterator read in a thread."""

    def __init__(
        self,
        first: bytes,
        rest: Iterator[bytes],
        length: int,
        status_code: int,
        headers: dict[str, str],
    ) -> None:
        self.first, self.rest, self.status_code = first, rest, status_code
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.headers.append((b"content-length", str(length).encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.headers}
        )
        chunk = self.first
        try:
            while chunk:
                following = await asyncio.to_thread(next, self.rest, b"")
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = following
        finally:
            close = getattr(self.rest, "close", None)
            if close is not None:
                close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
