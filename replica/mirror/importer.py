"""Images copied in from another registry, for pull mirrors and proxy repositories.

Each blob the repository lacks is streamed from the other registry into the cluster
as a push would be (its digest and length verified, replicated to a majority; nothing
half-received stays) and linked; a blob the cluster holds already is only linked. Then
the manifests, children first, and the tag. On one replica a blob is fetched once at a
time: a second import wanting it waits for the first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
from typing import Any

from replica import manifests
from replica.blobs import ingest
from replica.blobs.mirror import PeerMirror
from replica.blobs.store import BlobWriter
from replica.blobs.streams import mirrored_write
from replica.mirror.remote import RemoteError, RemoteRegistry
from replica.mirror.single_flight import SingleFlight
from replica.names import digest_of, is_tag
from replica.registry import Registry

_CHUNK = 1 << 20


class Importer:
    def __init__(self, registry: Registry, threads: int = 8) -> None:
        self.registry = registry
        self._fetching = SingleFlight()
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="import")
        self.blobs_fetched = 0  # from other registries, since this replica started
        self.bytes_fetched = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def call(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` (blocking: a remote registry's client) in the import threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def image(
        self, remote: RemoteRegistry, source: str, reference: str, repository: str, tag: str = ""
    ) -> str:
        """Copy `source:reference` on `remote` into `repository` (tagged `tag`, if
        given); its digest."""
        media_type, body, digest = await self.call(remote.manifest, source, reference)
        actual = digest_of(body)
        if not is_tag(reference) and actual != reference:
            raise RemoteError(f"{source}@{reference}: the registry sent {actual}")
        if digest and digest != actual:
            raise RemoteError(f"{source}:{reference}: announced {digest}, the body is {actual}")
        parsed = manifests.parse(repository, actual, media_type, body)
        for child in parsed.manifest_digests:
            if self.registry.state.manifest(repository, child) is None:
                await self.image(remote, source, child, repository)
        sizes = _blob_sizes(body)
        for blob in parsed.blob_digests:
            await self.blob(remote, source, blob, repository, sizes.get(blob))
        await self.registry.put_manifest(repository, tag or actual, media_type, body, "mirror")
        return actual

    async def blob(
        self,
        remote: RemoteRegistry,
        source: str,
        digest: str,
        repository: str,
        length: int | None = None,
    ) -> None:
        """Make `repository` link `digest`, fetching it from `remote` unless the cluster
        holds it."""
        state = self.registry.state
        if state.blob_link(repository, digest) is not None:
            return
        held = state.blob_size(digest)
        if held is not None:
            await self.registry.link_blob(repository, digest, held)
            return
        await self._fetching.run(
            (repository, digest), lambda: self._fetch(remote, source, digest, repository, length)
        )

    async def _fetch(
        self, remote: RemoteRegistry, source: str, digest: str, repository: str, length: int | None
    ) -> None:
        async def receive(writer: BlobWriter, mirror: PeerMirror | None) -> int:
            write = writer.write if mirror is None else mirrored_write(writer, mirror)
            return int(await self.call(_copy, remote, source, digest, write))

        replicator = self.registry.replication
        size, copies = await ingest.whole(replicator, receive, digest, length)
        self.blobs_fetched += 1
        self.bytes_fetched += size
        await self.registry.link_blob(repository, digest, size, copies)


def _copy(remote: RemoteRegistry, source: str, digest: str, write: Any) -> int:
    received = 0
    with contextlib.closing(remote.blob(source, digest)) as response:
        for chunk in response.iter_bytes(_CHUNK):
            write(memoryview(chunk))
            received += len(chunk)
    return received


def _blob_sizes(body: bytes) -> dict[str, int]:
    doc = json.loads(body)
    found = [doc.get("config"), *(doc.get("layers") or [])]
    return {d["digest"]: int(d["size"]) for d in found if isinstance(d, dict) and "size" in d}
