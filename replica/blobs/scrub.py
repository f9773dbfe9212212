"""Scrub: re-hash every local blob on a schedule and repair the corrupt ones from peers.

Reads never hash (a pull streams the file as it is, at disk speed); clients
verify what they receive, and this task finds what rotted on disk. A blob whose
bytes no longer match its digest is moved to `storage/corrupt/` at once, so no
client or peer is served it again, then copied back from a replica that holds a
good copy (each copy is verified on arrival). Hashing is paced (`rate_mib_s`) so
a scrub never starves pushes and pulls of disk bandwidth.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field

from replica.blobs.peer_fetch import copy_from_holders
from replica.blobs.replication import BlobReplicator
from replica.blobs.store import LocalBlobStore
from replica.metrics import Metrics
from replica.names import new_hasher

log = logging.getLogger("qreg.scrub")

_READ = 4 << 20


@dataclass
class ScrubReport:
    checked: int = 0
    bytes: int = 0
    corrupt: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "bytes": self.bytes,
            "corrupt": self.corrupt,
            "repaired": self.repaired,
            "seconds": round(self.seconds, 3),
        }


class Scrubber:
    def __init__(
        self, replicator: BlobReplicator, metrics: Metrics, interval_s: float, rate_mib_s: float
    ) -> None:
        self._replicator = replicator
        self._metrics = metrics
        self._interval = interval_s
        self._rate = rate_mib_s * (1 << 20)
        self._running = asyncio.Lock()
        self._quarantine = os.path.join(replicator.store.root, "corrupt")

    async def run(self) -> None:
        """Scrub every `interval_s` seconds, forever; 0 turns the schedule off."""
        if self._interval <= 0:
            return
        while True:
            await asyncio.sleep(self._interval)
            if self._replicator.store.shared and not self._replicator.leads():
                continue  # the leader scrubs the shared store for every replica
            try:
                await self.scrub_once()
            except Exception:
                log.exception("scrub failed")

    async def scrub_once(self) -> ScrubReport:
        async with self._running:  # a scheduled and an asked-for scrub never overlap
            started = time.monotonic()
            report = ScrubReport()
            store = self._replicator.store
            for digest in await asyncio.to_thread(lambda: list(store.walk())):
                size = await asyncio.to_thread(self._hash_matches, digest)
                if size is None:
                    continue  # deleted meanwhile
                report.checked += 1
                report.bytes += abs(size)
                self._metrics.scrub_blobs.inc()
                self._metrics.scrub_bytes.inc(abs(size))
                if size >= 0:
                    continue
                report.corrupt.append(digest)
                if await self._repair(digest):
                    report.repaired.append(digest)
            report.seconds = time.monotonic() - started
            self._metrics.scrub_completed.set(time.time())
            log.info(
                "scrub done: %d blobs, %d bytes, %d corrupt, %d repaired in %.1f s",
                report.checked,
                report.bytes,
                len(report.corrupt),
                len(report.repaired),
                report.seconds,
            )
            return report

    def _hash_matches(self, digest: str) -> int | None:
        """The blob's size if its bytes match its digest, minus its size if not,
        None if it is gone. Paced to `rate_mib_s`."""
        hasher = new_hasher(digest)
        started, size = time.monotonic(), 0
        try:
            with self._replicator.store.open(digest) as f:
                while chunk := f.read(_READ):
                    hasher.update(chunk)
                    size += len(chunk)
                    ahead = size / self._rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except FileNotFoundError:
            return None
        actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
        return size if actual == digest else -max(size, 1)

    async def _repair(self, digest: str) -> bool:
        self._metrics.scrub_corrupt.inc()
        store = self._replicator.store
        if not isinstance(store, LocalBlobStore):
            # No other copy to repair from: the object store's own redundancy failed.
            # Clients verify digests, so a pull fails rather than installs bad bytes.
            log.error(
                "blob %s is corrupt in the shared object store: push it again",
                digest,
                extra={"fields": {"event": "blob_corrupt", "digest": digest}},
            )
            return False
        os.makedirs(self._quarantine, exist_ok=True)
        aside = os.path.join(self._quarantine, digest.replace(":", "-"))
        try:
            os.rename(store.path(digest), aside)
        except FileNotFoundError:
            return False
        log.error(
            "blob %s is corrupt on this replica: moved to %s, repairing from peers",
            digest,
            aside,
            extra={"fields": {"event": "blob_corrupt", "digest": digest}},
        )
        if await copy_from_holders(self._replicator, digest) is None:
            log.error(
                "blob %s could not be repaired: no other replica sent a good copy",
                digest,
                extra={"fields": {"event": "blob_unrepaired", "digest": digest}},
            )
            return False
        self._metrics.scrub_repaired.inc()
        log.warning(
            "blob %s repaired from a peer",
            digest,
            extra={"fields": {"event": "blob_repaired", "digest": digest}},
        )
        return True
