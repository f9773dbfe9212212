"""Streaming a blob to peers while it is still being received.

Without this, a peer's copy starts only once the local copy is committed, and a
push to three replicas takes twice as long as to one. A mirror opens one gRPC
Push per peer when the first bytes arrive and hands each peer every chunk the
local writer gets, in the same order; the digest travels in the last message,
once the local copy is verified. A peer that falls behind, fails or idles is
dropped from the mirror: the caller copies the committed file to it instead.
A push that ends without a digest is discarded by the peer, so an abandoned
mirror never leaves a blob behind.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from replica.blobs import frames
from replica.blobs.transfer import CHUNK, BlobClient

log = logging.getLogger("qreg.blob_mirror")

# Per peer, at most this many messages (of up to CHUNK bytes) wait to be sent:
# bounded memory.
_QUEUE_MESSAGES = 3
# A peer that cannot take a chunk for this long is dropped, not waited for.
_STALL_S = 2.0
# A session with no new bytes for this long stops mirroring (clients rarely pause).
_IDLE_S = 30.0
_END = None


@dataclass
class _Stream:
    replica_id: str
    call: grpc.Future
    messages: queue.Queue[bytes | None]
    dropped: bool = False

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            self.call.cancel()
            try:
                self.messages.put_nowait(_END)
            except queue.Full:
                pass  # the cancelled call stops reading; the idle timeout ends the iterator


class PeerMirror:
    """Sends what a BlobWriter receives to peers as it arrives. Thread-safe for one writer."""

    def __init__(self, client: BlobClient, peers: dict[str, str]) -> None:
        """`peers` maps replica ids to gRPC addresses."""
        self._client = client
        self._peers = peers
        self._streams: dict[str, _Stream] | None = None
        self._lock = threading.Lock()
        self.sent = 0

    def _open(self) -> dict[str, _Stream]:
        streams = {}
        for replica_id, address in self._peers.items():
            messages: queue.Queue[bytes | None] = queue.Queue(_QUEUE_MESSAGES)
            call = self._client.push_stream(address, _drain(messages))
            streams[replica_id] = _Stream(replica_id, call, messages)
        return streams

    def write(self, data: bytes | memoryview) -> None:
        """Queue bytes for every live peer; drop peers that cannot keep up."""
        with self._lock:
            if self._streams is None:
                self._streams = self._open()
            view = memoryview(data)
            for offset in range(0, len(view), CHUNK):
                message = frames.push_data(view[offset : offset + CHUNK])
                for stream in self._streams.values():
                    if stream.dropped:
                        continue
                    if stream.call.done():  # the peer failed or hung up
                        log.warning(
                            "mirroring to %s stopped: %s", stream.replica_id, _failure(stream.call)
                        )
                        stream.drop()
                        continue
                    try:
                        stream.messages.put(message, timeout=_STALL_S)
                    except queue.Full:
                        log.warning("dropping %s from a mirror: it fell behind", stream.replica_id)
                        stream.drop()
            self.sent += len(data)

    def finish(self, digest: str, size: int) -> dict[str, grpc.Future]:
        """End every live stream with the verified digest; the calls answer once each
        peer committed. Peers missing from the answer need the committed file."""
        with self._lock:
            live = {}
            for stream in (self._streams or {}).values():
                if stream.dropped or stream.call.done() or size != self.sent:
                    stream.drop()
                    continue
                try:
                    stream.messages.put(frames.push_end(digest, size), timeout=_STALL_S)
                    stream.messages.put(_END, timeout=_STALL_S)
                except queue.Full:
                    stream.drop()
                    continue
                live[stream.replica_id] = stream.call
            self._streams = {}
            return live

    def abort(self) -> None:
        """Stop every stream; peers discard what they received."""
        with self._lock:
            for stream in (self._streams or {}).values():
                stream.drop()
            self._streams = {}


def _drain(messages: queue.Queue[bytes | None]) -> Iterator[bytes]:
    while True:
        try:
            message = messages.get(timeout=_IDLE_S)
        except queue.Empty:
            return  # no digest was sent: the peer discards the bytes
        if message is _END:
            return
        yield message


def _failure(call: grpc.Future) -> str:
    if call.cancelled():
        return "cancelled"
    error = call.exception()
    return str(error) if error else "answered early"
