"""Background blob sync: bring every blob the cluster holds to this replica.

A replica that was down while blobs were pushed, or that just joined, holds
fewer blobs than the metadata lists (with a replication factor, only the blobs
that placement.py gives it count). Every few seconds this task asks the state
which blobs it lacks, fetches them from holders over gRPC (two at a time),
verifies and commits each, and records itself as a holder. It serves pulls
meanwhile: a pull of a missing blob fetches it on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from proto import commands_pb2 as pb
from replica.errors import RegistryError
from replica.peer_fetch import copy_from_holders
from replica.placement import fills_gap, target_copies
from replica.registry import Registry

log = logging.getLogger("qreg.blob_sync")


class BlobSync:
    def __init__(self, registry: Registry, interval: float = 2.0, parallel: int = 2) -> None:
        self._registry = registry
        self._interval = interval
        self._parallel = asyncio.Semaphore(parallel)
        self.missing_blobs = 0
        self.missing_bytes = 0

    async def run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.sync_once()
            await asyncio.sleep(self._interval)

    async def sync_once(self) -> None:
        registry = self._registry
        if not registry.raft.has_peers or registry.blobs is None:
            return
        # A scan of every blob record: off the event loop.
        missing = await asyncio.to_thread(registry.state.blobs_missing_from, registry.replica_id)
        if registry.replication_factor > 0:
            members = registry.member_ids()
            target = target_copies(registry.replication_factor, len(members))
            missing = [m for m in missing
                       if fills_gap(m[0], registry.replica_id, m[2], members, target)]
        self.missing_blobs = len(missing)
        self.missing_bytes = sum(size for _, size, _ in missing)
        await asyncio.gather(*(self._copy(digest, size) for digest, size, _ in missing))

    async def _copy(self, digest: str, size: int) -> None:
        registry = self._registry
        async with self._parallel:
            if registry.store.stat(digest) != size:
                if await copy_from_holders(registry, digest) is None:
                    return
            try:
                await registry.propose(pb.Command(link_blob=pb.LinkBlob(
                    digest=digest, size=size, replica_id=registry.replica_id)))
            except RegistryError as e:
                log.info("recording the copy of %s waits: %s", digest, e)
                return
            self.missing_blobs = max(self.missing_blobs - 1, 0)
            self.missing_bytes = max(self.missing_bytes - size, 0)
