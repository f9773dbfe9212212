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

from replica.blobs.peer_fetch import copy_from_holders
from replica.blobs.replication import BlobReplicator
from replica.errors import RegistryError
from replica.names import new_hasher

log = logging.getLogger("qreg.blob_sync")


class BlobSync:
    def __init__(
        self, replicator: BlobReplicator, interval: float = 2.0, parallel: int = 2
    ) -> None:
        self._replicator = replicator
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
        missing = await asyncio.to_thread(self._replicator.missing_here)
        self.unavailable_blobs = sum(1 for _, _, holders in missing if not holders)
        self.missing_blobs = len(missing)
        self.missing_bytes = sum(size for _, size, _ in missing)
        await asyncio.gather(
            *(self._copy(digest, size, holders) for digest, size, holders in missing)
        )

    async def _copy(self, digest: str, size: int, holders: list[str]) -> None:
        replicator = self._replicator
        async with self._parallel:
            seen = replicator.collections_seen()  # before the copy is claimed (gc.py)
            if replicator.store.claim(digest) == size:
                # Here, but not written by this replica's own push or fetch: check it.
                if not await asyncio.to_thread(self._matches, digest):
                    log.warning("the local file of %s does not match its digest: ignored", digest)
                    return
            elif not holders or await copy_from_holders(replicator, digest) is None:
                return
            try:
                await replicator.record_copy(digest, size, seen)
            except RegistryError as e:
                log.info("recording the copy of %s waits: %s", digest, e)
                return
            self.missing_blobs = max(self.missing_blobs - 1, 0)
            self.missing_bytes = max(self.missing_bytes - size, 0)
            if not holders:
                self.unavailable_blobs = max(self.unavailable_blobs - 1, 0)

    def _matches(self, digest: str) -> bool:
        hasher = new_hasher(digest)
        with self._replicator.store.open(digest) as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
        return f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}" == digest
