"""Every replica deletes its own files of the blobs a collection removed.

The state machine tells the sweeper of each applied CollectBlobs (on the Raft thread,
with the moment its apply began). A file goes only if it is older than that moment
and the blob still has no record: a copy committed after the collection was applied
here is a new upload of the same bytes (consensus/gc.py says why that is safe).

A replica that missed the notification (it was restarted, or caught up from a
snapshot) finds the files in its orphan sweep: a file with no record goes once it
is older than its tombstone (the collection's time, less a clock skew allowance), or,
with no tombstone, older than a day (an upload whose link never committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from consensus import MetadataState, gc
from proto import commands_pb2 as pb
from replica.blobs.store import BlobStore
from replica.errors import RegistryError
from replica.metrics import Metrics

log = logging.getLogger("qreg.gc.sweep")

CLOCK_SKEW_S = 60.0
SHARED_STORE_MARGIN_S = 3.0  # how far replicas' clocks may disagree, for tombstone times
ORPHAN_AGE_S = 86_400.0  # an unrecorded file this old never gets its link
ORPHAN_SWEEP_EVERY_S = 6 * 3600.0


@dataclass
class SweepTotals:
    files: int = 0
    bytes: int = 0
    errors: int = 0
    last_error: str = ""


class FileSweeper:
    def __init__(
        self,
        replica_id: str,
        store: BlobStore,
        state: MetadataState,
        metrics: Metrics,
    ) -> None:
        self._replica_id = replica_id
        self._store = store
        self._state = state
        self._metrics = metrics
        # (when its apply began, epoch, digests, whether this replica led then)
        self._collected: queue.SimpleQueue[tuple[float, int, list[str], bool]] = queue.SimpleQueue()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._totals: dict[int, SweepTotals] = {}  # per epoch, as recorded
        self.pending = 0  # digests told of, not yet handled
        # With a shared store (object storage) one replica deletes for all: the leader.
        self.is_leader: Callable[[], bool] = lambda: True

    def _sweeps_here(self) -> bool:
        return not self._store.shared or self.is_leader()

    def on_collect(self, began: float, epoch: int, digests: list[str]) -> None:
        """MetadataState.on_collect: runs on the Raft thread, so it only hands over."""
        self.pending += len(digests)
        self._collected.put((began, epoch, digests, self.is_leader()))
        with contextlib.suppress(RuntimeError):  # the loop is closing: the orphan sweep
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(
        self,
        propose: Callable[[pb.Command], Awaitable[None]],
        fresh: Callable[[], Awaitable[bool]],
    ) -> None:
        """Delete files as collections are applied, and sweep orphans now and then;
        `propose` records each sweep, `fresh` says whether the state is current."""
        next_orphan_sweep = time.monotonic() + 30.0  # once started and caught up
        while True:
            with contextlib.suppress(TimeoutError):
                timeout = max(next_orphan_sweep - time.monotonic(), 0.0)
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                await self.drain(propose)
                if time.monotonic() >= next_orphan_sweep:
                    # Only on a state known to be current: a lagging one lacks new records.
                    current = await fresh()
                    if current:
                        await asyncio.to_thread(self.sweep_orphans)
                    later = ORPHAN_SWEEP_EVERY_S if current else 30.0
                    next_orphan_sweep = time.monotonic() + later
            except Exception:
                log.exception("garbage collection's file sweep failed; it runs again")
                await asyncio.sleep(5.0)

    async def drain(self, propose: Callable[[pb.Command], Awaitable[None]]) -> None:
        """Delete the files of every collection told of so far, and record what went."""
        touched: set[int] = set()
        while True:
            try:
                began, epoch, digests, led = self._collected.get_nowait()
            except queue.Empty:
                break
            told = len(digests)
            if self._store.shared and not led:
                digests = []  # the leader of the moment deletes from the shared store
            await asyncio.to_thread(self._delete, began, epoch, digests)
            self.pending = max(self.pending - told, 0)
            touched.add(epoch)
        for epoch in sorted(touched):
            await self._record(epoch, propose)

    def _delete(self, began: float, epoch: int, digests: list[str]) -> None:
        totals = self._totals.setdefault(epoch, SweepTotals())
        if self._store.shared:
            # The leader applies an entry before any follower learns it is committed,
            # so a copy a follower commits after its own apply is newer than this, less
            # the store's clock resolution (whole seconds, and its offset from ours).
            began -= SHARED_STORE_MARGIN_S
        for digest in digests:
            freed = self._delete_one(digest, began, totals)
            if freed is not None:
                totals.files += 1
                totals.bytes += freed
        while len(self._totals) > 8:  # only recent runs' totals are still recorded
            del self._totals[min(self._totals)]

    def _delete_one(self, digest: str, before: float, totals: SweepTotals) -> int | None:
        try:
            freed = self._store.delete_if_older(
                digest, before, lambda: not self._state.view(gc.blob_recorded, digest)
            )
        except (OSError, RegistryError) as e:
            totals.errors += 1
            totals.last_error = f"{digest}: {e}"[:300]
            self._metrics.gc_sweep_errors.inc()
            log.warning("could not delete the file of %s: %s", digest, e)
            return None
        if freed is not None:
            self._metrics.gc_files_deleted.inc()
            self._metrics.gc_bytes_freed.inc(freed)
            log.debug("deleted the file of %s (%d bytes)", digest, freed)
        return freed

    async def _record(self, epoch: int, propose: Callable[[pb.Command], Awaitable[None]]) -> None:
        totals = self._totals.get(epoch, SweepTotals())
        log.info(
            "collection %d: deleted %d files (%d bytes) here, %d errors",
            epoch,
            totals.files,
            totals.bytes,
            totals.errors,
            extra={"fields": {"epoch": epoch, "files": totals.files, "bytes": totals.bytes}},
        )
        command = pb.RecordSweep(
            epoch=epoch,
            replica_id=self._replica_id,
            at_ms=int(time.time() * 1000),
            files=totals.files,
            bytes=totals.bytes,
            errors=totals.errors,
            last_error=totals.last_error,
        )
        try:
            await propose(pb.Command(record_sweep=command))
        except RegistryError as e:  # the files are gone either way; only the report waits
            log.info("recording the sweep of collection %d failed: %s", epoch, e)

    def sweep_orphans(self) -> SweepTotals:
        """Delete files of blobs with no record that a collection removed, or that were
        never recorded, once old enough. Walks every file: run it off the event loop."""
        totals = SweepTotals()
        if not self._state.view(gc.epoch) or not self._sweeps_here():
            return totals  # no collection ever ran: unrecorded files are not ours to judge
        buried = dict(self._state.view(lambda txn: list(gc.tombstones(txn))))
        now = time.time()
        for digest in self._store.walk():
            if self._state.view(gc.blob_recorded, digest):
                continue
            died_ms = buried.get(digest)
            before = died_ms / 1000 - CLOCK_SKEW_S if died_ms else now - ORPHAN_AGE_S
            freed = self._delete_one(digest, before, totals)
            if freed is not None:
                totals.files += 1
                totals.bytes += freed
        if totals.files or totals.errors:
            log.info(
                "orphan sweep deleted %d files (%d bytes), %d errors",
                totals.files,
                totals.bytes,
                totals.errors,
            )
        return totals
