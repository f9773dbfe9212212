"""Replica-to-replica blob transfer over gRPC (proto/blobs.proto).

The server runs in threads of its own (gRPC's synchronous server), beside the
event loop: its handlers do blocking file I/O. Every call must carry the
cluster's internal token, over mutual TLS with certificates of the cluster CA.
A Push is answered only once the blob is verified and fsynced, which is what
lets the uploading replica count the peer toward a majority.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio

from proto import blobs_pb2 as pb
from replica.blobs import frames
from replica.blobs.store import BlobStore
from replica.errors import RegistryError, StorageFull
from replica.internal_auth import internal_token, is_internal
from replica.names import check_digest
from replica.pki import TlsFiles
from replica.tls_reload import (
    channel_credentials,
    channel_credentials_source,
    reloading_server_credentials,
)

log = logging.getLogger("qreg.blob_service")

METADATA_KEY = "x-qreg-internal"
# Bytes per message: large enough that gRPC's and Python's cost per message is small
# beside the bytes' own; peers of every version take messages up to 8 MiB.
CHUNK = 4 << 20
_OPTIONS = [("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)]
_SERVICE = "quorum.blobs.BlobTransfer"


class _Servicer:
    def __init__(
        self, store: BlobStore, replica_id: str, token: str | None, seen: Callable[[], int]
    ) -> None:
        self._store = store
        self._replica_id = replica_id
        self._token = token
        self._seen = seen

    def _authorize(self, context: grpc.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata())
        if not is_internal(self._token, metadata.get(METADATA_KEY)):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "cluster credentials required")

    def _digest(self, digest: str, context: grpc.ServicerContext) -> str:
        try:
            return check_digest(digest)
        except RegistryError:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid digest {digest[:100]!r}")
            raise  # unreachable: abort raises

    def Push(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> pb.PushResult:
        """Serialized PushChunks (frames.py reads them without copying the bytes). The
        digest comes with the first message (a committed blob) or the last (a mirror
        of a blob still being received); a stream ending without one is discarded."""
        self._authorize(context)
        first = next(requests, None)
        if first is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty push")
            raise AssertionError("abort raises")
        # Read before the copy is committed (consensus/gc.py says why).
        seen = self._seen()
        data, digest, size = frames.read_push(first)
        if digest and self._store.claim(self._digest(digest, context)) == size:
            return pb.PushResult(replica_id=self._replica_id, seen=seen)
        writer = self._store.writer()
        try:
            writer.write(data)
            for raw in requests:
                data, named, named_size = frames.read_push(raw)
                writer.write(data)
                if named:
                    digest, size = named, named_size
        except StorageFull as e:
            writer.discard()
            log.warning("refused a blob from a peer: %s", e.message)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, e.message)
        except BaseException:
            writer.discard()
            raise
        if not digest:
            writer.discard()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the push ended without a digest")
        try:
            check_digest(digest)
            self._store.commit(writer, digest, size)  # verifies, fsyncs, renames
        except RegistryError as e:
            writer.discard()  # a no-op when commit already discarded it
            context.abort(grpc.StatusCode.DATA_LOSS, f"{e.code}: {e.message}")
        return pb.PushResult(replica_id=self._replica_id, seen=seen)

    def Fetch(self, request: pb.FetchRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        """Serialized Chunks (frames.py)."""
        self._authorize(context)
        digest = self._digest(request.digest, context)
        try:
            f = self._store.open(digest)
        except FileNotFoundError:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{digest} is not here")
        with f:
            while data := f.read(CHUNK):
                yield frames.chunk_data(data)

    def Holds(self, request: pb.HoldsRequest, context: grpc.ServicerContext) -> pb.HoldsResult:
        self._authorize(context)
        held = [
            d for d in request.digests if self._store.stat(self._digest(d, context)) is not None
        ]
        return pb.HoldsResult(digests=held)


class BlobServer:
    """Mutual TLS: a caller must present a certificate issued by the cluster CA."""

    def __init__(
        self,
        address: str,
        store: BlobStore,
        replica_id: str,
        secret: str | None,
        tls: TlsFiles,
        seen: Callable[[], int],
    ) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=_OPTIONS)
        servicer = _Servicer(store, replica_id, internal_token(secret), seen)
        # Push takes and Fetch gives serialized messages as they are (frames.py).
        handlers = {
            "Push": grpc.stream_unary_rpc_method_handler(
                servicer.Push, response_serializer=pb.PushResult.SerializeToString
            ),
            "Fetch": grpc.unary_stream_rpc_method_handler(
                servicer.Fetch, request_deserializer=pb.FetchRequest.FromString
            ),
            "Holds": grpc.unary_unary_rpc_method_handler(
                servicer.Holds,
                request_deserializer=pb.HoldsRequest.FromString,
                response_serializer=pb.HoldsResult.SerializeToString,
            ),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE, handlers),)
        )
        credentials = reloading_server_credentials(tls)  # qreg tls renew, no restart
        if self._server.add_secure_port(address, credentials) == 0:
            raise OSError(f"cannot listen for gRPC on {address}")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 2.0) -> None:
        self._server.stop(grace).wait()


class BlobClient:
    """Blocking calls to peers; run them in worker threads."""

    def __init__(self, secret: str | None, tls: TlsFiles) -> None:
        self._metadata = ((METADATA_KEY, internal_token(secret) or ""),)
        self._credentials = channel_credentials(tls)
        self._renewed = channel_credentials_source(tls)
        self._stubs: dict[str, _Calls] = {}
        self._channels: list[grpc.Channel] = []
        self._push_pool = futures.ThreadPoolExecutor(
            max_workers=16, thread_name_prefix="qreg-blob-push"
        )
        # Streams to the event loop (fetch_async); channels of the loop that serves.
        self._aio_stubs: dict[str, _Calls] = {}
        self._aio_channels: list[grpc.aio.Channel] = []

    def _renew(self) -> None:
        """A renewed certificate: new channels use it (open ones finish as they are)."""
        renewed = self._renewed()
        if renewed is not None:
            self._credentials = renewed
            self._stubs = {}
            self._aio_stubs = {}

    def _stub(self, address: str) -> _Calls:
        self._renew()
        stub = self._stubs.get(address)
        if stub is None:
            channel = grpc.secure_channel(address, self._credentials, options=_OPTIONS)
            self._channels.append(channel)
            stub = self._stubs[address] = _Calls(channel)
        return stub

    def push(
        self, address: str, digest: str, size: int, path: str, timeout: float = 600
    ) -> pb.PushResult:
        """Copy the blob at `path` to a peer; its answer once the copy is durable there."""

        def chunks() -> Iterator[bytes]:
            # The digest first: a peer that holds the blob answers before any bytes.
            yield frames.push_end(digest, size)
            with open(path, "rb") as f:
                while data := f.read(CHUNK):
                    yield frames.push_data(data)

        result: pb.PushResult = self._stub(address).Push(
            chunks(), metadata=self._metadata, timeout=timeout
        )
        return result

    async def push_async(
        self, address: str, digest: str, size: int, path: str, timeout: float = 600
    ) -> pb.PushResult:
        """`push` on the blob client's own threads, never the default executor that
        disk reads and writes use."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._push_pool, self.push, address, digest, size, path, timeout
        )

    def push_stream(self, address: str, messages: Iterator[bytes]) -> grpc.Future:
        """Start a Push fed by serialized PushChunks (frames.py); the future holds the
        PushResult."""
        return self._stub(address).Push.future(messages, metadata=self._metadata)

    def fetch(self, address: str, digest: str, timeout: float = 600) -> Iterator[bytes]:
        for chunk in self._stub(address).Fetch(
            pb.FetchRequest(digest=digest), metadata=self._metadata, timeout=timeout
        ):
            yield bytes(frames.read_chunk(chunk))

    async def fetch_async(self, address: str, digest: str) -> AsyncIterator[bytes]:
        """`fetch` for the event loop, over grpc.aio: no worker thread per stream.

        (A thread per stream once took every default-executor thread while waiting for
        consumers that needed one of those threads to write to disk: eight pulls of
        an absent blob hung a replica.)
        """
        call = self._aio_stub(address).Fetch(
            pb.FetchRequest(digest=digest), metadata=self._metadata, timeout=600
        )
        try:
            async for chunk in call:
                yield bytes(frames.read_chunk(chunk))  # a view is not an HTTP body
        except grpc.aio.AioRpcError as e:
            raise PeerFetchError(f"{address}: {e.code().name}: {e.details()}") from None
        finally:
            call.cancel()

    def _aio_stub(self, address: str) -> _Calls:
        self._renew()
        stub = self._aio_stubs.get(address)
        if stub is None:
            channel = grpc.aio.secure_channel(address, self._credentials, options=_OPTIONS)
            self._aio_channels.append(channel)
            stub = self._aio_stubs[address] = _Calls(channel)
        return stub

    async def aclose(self) -> None:
        for channel in self._aio_channels:
            await channel.close()
        self.close()

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        self._push_pool.shutdown(wait=False, cancel_futures=True)


class _Calls:
    """The service's methods on one channel (blocking or grpc.aio): Push sends and Fetch
    receives serialized messages as they are (frames.py)."""

    def __init__(self, channel: grpc.Channel | grpc.aio.Channel) -> None:
        self.Push = channel.stream_unary(
            f"/{_SERVICE}/Push", response_deserializer=pb.PushResult.FromString
        )
        self.Fetch = channel.unary_stream(
            f"/{_SERVICE}/Fetch", request_serializer=pb.FetchRequest.SerializeToString
        )
        self.Holds = channel.unary_unary(
            f"/{_SERVICE}/Holds",
            request_serializer=pb.HoldsRequest.SerializeToString,
            response_deserializer=pb.HoldsResult.FromString,
        )


async def result_of(future: grpc.Future, timeout: float) -> Any:
    """Await a gRPC future from the event loop without parking a thread on it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(_: object) -> None:
        loop.call_soon_threadsafe(lambda: None if done.done() else done.set_result(None))

    future.add_done_callback(settle)
    await asyncio.wait_for(done, max(timeout, 0.0))
    return future.result(timeout=0)


class PeerFetchError(Exception):
    """A peer could not send a blob."""
