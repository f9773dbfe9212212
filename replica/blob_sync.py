"""Background blob sync: bring every blob the cluster holds to this replica.

A replica that was down while blobs were pushed, or that just joined, holds
fewer blobs than the metadata lists (with a replication factor, only the blobs
that placement.py gives it count). Every few seconds this task asks the state
which blobs it lacks, fetches them from holders over gRPC (two at a time),
verifies and commits each, and records itself as a holder. It serves pulls
meanwhile: a pull of a missing blob fetches it on demand.

A blob file this replica has but is not recorded as holding (a restore from a
backup with its blobs, a copy made by hand) is checked against its digest and
recorded, so the others can fetch it. A blob no replica holds is counted as
unavailable, not as something to sync: after a metadata-only restore, that is
every blob until their files are put back.
"""

from __future__ import annotations

import asyncio
import logging

from proto import commands_pb2 as pb
from replica.errors import RegistryError
from replica.names import new_hasher
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
        self.unavailable_blobs = 0  # no replica holds them
        self.failed_rounds = 0

    async def run(self) -> None:
        while True:
            try:
                await self.sync_once()
            except Exception:
                self.failed_rounds += 1
                log.exception("blob sync round failed (%d so far)", self.failed_rounds)
            await asyncio.sleep(self._interval)

    async def sync_once(self) -> None:
        registry = self._registry
        # A scan of every blob record: off the event loop.
        missing = await asyncio.to_thread(registry.state.blobs_missing_from, registry.replica_id)
        if registry.replication_factor > 0:
            members = registry.member_ids()
            target = target_copies(registry.replication_factor, len(members))
            missing = [
                m
                for m in missing
                if not m[2] or fills_gap(m[0], registry.replica_id, m[2], members, target)
            ]
        self.unavailable_blobs = sum(1 for _, _, holders in missing if not holders)
        self.missing_blobs = len(missing)
        self.missing_bytes = sum(size for _, size, _ in missing)
        await asyncio.gather(
            *(self._copy(digest, size, holders) for digest, size, holders in missing)
        )

    async def _copy(self, digest: str, size: int, holders: list[str]) -> None:
        registry = self._registry
        async with self._parallel:
            if registry.store.stat(digest) == size:
                # Here, but not written by this replica's own push or fetch: check it.
                if not await asyncio.to_thread(self._matches, digest):
                    log.warning("the local file of %s does not match its digest: ignored", digest)
                    return
            elif (
                not holders
                or registry.blobs is None
                or await copy_from_holders(registry, digest) is None
            ):
                return
            try:
                await registry.propose(
                    pb.Command(
                        link_blob=pb.LinkBlob(
                            digest=digest, size=size, replica_id=registry.replica_id
                        )
                    )
                )
            except RegistryError as e:
                log.info("recording the copy of %s waits: %s", digest, e)
                return
            self.missing_blobs = max(self.missing_blobs - 1, 0)
            self.missing_bytes = max(self.missing_bytes - size, 0)
            if not holders:
                self.unavailable_blobs = max(self.unavailable_blobs - 1, 0)

    def _matches(self, digest: str) -> bool:
        hasher = new_hasher(digest)
        with self._registry.store.open(digest) as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
        return f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}" == digest
