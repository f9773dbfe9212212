"""Serving a blob that only peers hold: stream it to the client and to local disk at once.

The bytes come over the gRPC blob service. The local copy becomes visible only
after its digest is verified, and the client's last chunk is sent only then;
afterwards this replica records itself as a holder. A peer that fails before the first byte is
replaced by the next holder; one that fails later cuts the client's response
short, and the client retries, as clients do on a truncated body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.types import Receive, Scope, Send

from replica.blobs.replication import BlobReplicator
from replica.blobs.transfer import PeerFetchError
from replica.errors import BlobUnknown, DigestInvalid, RegistryError, StorageFull

log = logging.getLogger("qreg.peer_fetch")


async def copy_from_holders(replicator: BlobReplicator, digest: str) -> int | None:
    """Copy a blob from the first holder that sends it whole into the local store;
    its size, or None when no holder could (no client waits on these bytes)."""
    if replicator.client is None:
        return None
    for address in replicator.sources(digest):
        writer = replicator.store.writer()
        try:
            async for chunk in replicator.client.fetch_async(address, digest):
                await asyncio.to_thread(writer.write, chunk)
            return int(await asyncio.to_thread(replicator.store.commit, writer, digest))
        except StorageFull as e:
            writer.discard()  # other holders would not help: no room here
            log.warning("no room to copy %s: %s", digest, e)
            return None
        except (PeerFetchError, RegistryError) as e:
            writer.discard()
            log.warning("copying %s from %s failed: %s", digest, address, e)
        except BaseException:
            writer.discard()
            raise
    return None


async def fetch_to_disk(replicator: BlobReplicator, digest: str) -> None:
    """Copy a blob that only peers hold, then record this replica as a holder."""
    seen = replicator.collections_seen()
    size = await copy_from_holders(replicator, digest)
    if size is None:
        raise BlobUnknown("no replica that holds this blob answered", detail={"digest": digest})
    await replicator.record_copy(digest, size, seen)


class PeerBlobResponse:
    """Streams a blob from a holder to the client while keeping a verified copy."""

    def __init__(self, replicator: BlobReplicator, digest: str, headers: dict[str, str]) -> None:
        self.replicator = replicator
        self.digest = digest
        self.status_code = 200
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.length = int(headers.get("Content-Length", 0))

    async def chunks(self) -> AsyncIterator[bytes]:
        replicator = self.replicator
        sources = replicator.sources(self.digest)
        if not sources or replicator.client is None:
            raise BlobUnknown("no replica holds this blob", detail={"digest": self.digest})
        keep = replicator.keeps(self.digest)
        seen = replicator.collections_seen()
        for address in sources:
            writer = replicator.store.writer()
            if not keep:  # another replica is meant to hold it (blobs.replication_factor)
                writer.hash_only()
            started = False
            held: bytes | None = None
            try:
                async for chunk in replicator.client.fetch_async(address, self.digest):
                    try:
                        await asyncio.to_thread(writer.write, chunk)
                    except StorageFull:
                        # No room for a copy: keep hashing and serve the client anyway.
                        log.warning("no room to keep %s: serving it without a copy", self.digest)
                    if held is not None:
                        started = True
                        yield held
                    held = chunk
                # The last chunk waits for the digest check: a corrupt stream never
                # reaches the client whole (it sees a short body and retries).
                if writer.failed is not None:
                    verified = writer.digest(self.digest.split(":", 1)[0]) == self.digest
                    writer.discard()
                    if not verified:
                        raise DigestInvalid(detail={"digest": self.digest, "from": address})
                    if held is not None:
                        yield held
                    return
                size = await asyncio.to_thread(replicator.store.commit, writer, self.digest)
            except (PeerFetchError, RegistryError) as e:
                writer.discard()
                log.warning("fetching %s from %s failed: %s", self.digest, address, e)
                if started:
                    raise
                continue
            except BaseException:
                writer.discard()
                raise
            if held is not None:
                yield held
            try:
                await replicator.record_copy(self.digest, size, seen)
            except RegistryError as e:  # the client has its bytes; a later sync records it
                log.info("recording the copy of %s waits: %s", self.digest, e)
            return
        raise BlobUnknown(
            "no replica that holds this blob answered", detail={"digest": self.digest}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self.chunks()
        try:
            first = await anext(stream, None)
        except RegistryError as e:  # before the first byte, an error still gets its status
            await e.response()(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.headers}
        )
        if first is not None:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
