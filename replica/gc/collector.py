"""One garbage collection: mark over the replicated state, then remove the garbage
through Raft in batches, on one replica at a time (a lease in the state).

    claim the lease -> retention prunes tags -> BeginCollection (epoch E)
    -> untagged manifests (if asked) -> mark, off the event loop, on a state that
    includes E -> CollectBlobs(E, batch) ... -> FinishCollection -> release

Every replica (this one too) then deletes its files of the removed blobs
(sweeper.py). A run with a time limit stops between batches once over it; what it
left is marked again by the next run. A dry run only marks, and proposes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from consensus import gc, gc_manifests, gc_runs, policies
from proto import commands_pb2 as pb
from replica.errors import Conflict, RegistryError
from replica.metrics import Metrics
from replica.registry import Registry

log = logging.getLogger("qreg.gc")

BATCH = 500  # blobs per CollectBlobs entry: a few tens of KB in the log
LEASE_S = 60.0
RENEW_EVERY_S = 15.0
FEATURE = "gc"


@dataclass
class Mark:
    epoch: int
    blobs: list[pb.CollectedBlob]
    manifests: int
    seconds: float

    @property
    def bytes(self) -> int:
        return sum(b.size for b in self.blobs)


@dataclass
class Lease:
    """This replica's claim to be the one collecting, renewed while it runs."""

    registry: Registry
    renewed: float = field(default=0.0)

    async def claim(self) -> None:
        now = time.time()
        await self.registry.propose(
            pb.Command(
                claim_collector=pb.ClaimCollector(
                    replica_id=self.registry.replica_id,
                    at_ms=int(now * 1000),
                    until_ms=int((now + LEASE_S) * 1000),
                )
            )
        )
        self.renewed = time.monotonic()

    async def renew_if_due(self) -> None:
        if time.monotonic() - self.renewed >= RENEW_EVERY_S:
            await self.claim()

    async def release(self) -> None:
        claim = pb.ClaimCollector(
            replica_id=self.registry.replica_id, at_ms=int(time.time() * 1000)
        )
        try:
            await self.registry.propose(pb.Command(claim_collector=claim))
        except RegistryError as e:  # it lapses by itself
            log.info("releasing the collector lease failed: %s", e)


class Collector:
    def __init__(self, registry: Registry, metrics: Metrics, grace_s: float) -> None:
        self.registry = registry
        self.metrics = metrics
        self.grace_s = grace_s
        self._running = asyncio.Lock()

    async def mark(self) -> Mark:
        """What is garbage in the state as this replica has applied it now."""
        state = self.registry.state
        started = time.monotonic()
        now_ms = int(time.time() * 1000)
        grace_ms = int(self.grace_s * 1000)

        def marking(txn: Any) -> tuple[int, list[pb.CollectedBlob], int]:
            epoch, blobs = gc.mark(txn, now_ms, grace_ms)
            return epoch, blobs, gc.manifest_count(txn)

        epoch, blobs, manifests = await asyncio.to_thread(state.view, marking)
        return Mark(epoch, blobs, manifests, time.monotonic() - started)

    async def dry_run(
        self, untagged_after_s: float = 0
    ) -> tuple[Mark, dict[str, list[str]], dict[str, list[str]]]:
        """What is garbage now, the tags retention would prune and the untagged
        manifests that would go (their blobs are garbage only once they are gone: the
        mark does not count them)."""
        await self.registry.fresh()
        plans = self.retention_plans()
        untagged = await self.untagged(untagged_after_s)
        pruned = {r: [t.tag for t in tags] for r, tags in plans.items()}
        return await self.mark(), pruned, untagged

    async def untagged(self, after_s: float) -> dict[str, list[str]]:
        """Untagged manifests pushed more than `after_s` seconds ago (0: none)."""
        if not after_s:
            return {}
        before_ms = int((time.time() - after_s) * 1000)
        found: dict[str, list[str]] = await asyncio.to_thread(
            self.registry.state.view, gc_manifests.untagged, before_ms
        )
        return found

    def retention_plans(self) -> dict[str, list[pb.PrunedTag]]:
        state = self.registry.state
        now_ms = int(time.time() * 1000)
        plans = {}
        for rules in state.view(policies.policies):
            tags = state.view(policies.retention_plan, rules.repository, now_ms)
            if tags:
                plans[rules.repository] = tags
        return plans

    async def prune(self) -> int:
        """Apply every repository's retention rules now: the tags pruned."""
        pruned = 0
        for repository, tags in self.retention_plans().items():
            result = await self.registry.propose_result(
                pb.Command(
                    actor="retention",
                    at_ms=int(time.time() * 1000),
                    prune_tags=pb.PruneTags(
                        repository=repository, tags=tags, reason="retention rules"
                    ),
                )
            )
            pruned += int(result.message or 0)
            log.info("retention pruned %s tags of %s", result.message, repository)
        return pruned

    def _check_versions(self) -> None:
        members = set(self.registry.replication.member_ids())
        behind = sorted(
            r.replica_id
            for r in self.registry.state.replicas()
            if r.replica_id in members and FEATURE not in r.features
        )
        if behind:
            raise Conflict(
                "garbage collection needs every replica at a version that knows it; "
                f"upgrade {', '.join(behind)} first"
            )

    async def run(
        self, time_limit_s: float = 0.0, untagged_after_s: float = 0.0
    ) -> pb.CollectionRun:
        """Collect now; the run's record. Conflict if a collection is running."""
        if self._running.locked():
            raise Conflict("a garbage collection is already running on this replica")
        async with self._running:
            self._check_versions()
            lease = Lease(self.registry)
            await lease.claim()
            try:
                return await self._run(lease, time_limit_s, untagged_after_s)
            finally:
                await lease.release()

    async def _run(
        self, lease: Lease, time_limit_s: float, untagged_after_s: float
    ) -> pb.CollectionRun:
        registry = self.registry
        started = time.monotonic()
        pruned = await self.prune()
        began = await registry.propose_result(
            pb.Command(
                begin_collection=pb.BeginCollection(
                    at_ms=int(time.time() * 1000),
                    replica_id=registry.replica_id,
                    time_limit_s=int(time_limit_s),
                )
            )
        )
        epoch = int(began.message)
        finish = pb.FinishCollection(epoch=epoch, outcome="finished", tags_pruned=pruned)
        try:
            # The proposal returned once applied here: what follows sees every manifest
            # committed before the epoch began.
            for repository, digests in (await self.untagged(untagged_after_s)).items():
                for first in range(0, len(digests), BATCH):
                    await lease.renew_if_due()
                    command = pb.CollectManifests(
                        epoch=epoch, repository=repository, digests=digests[first : first + BATCH]
                    )
                    result = await registry.propose_result(pb.Command(collect_manifests=command))
                    finish.manifests_collected += int(result.message or 0)
            marked = await self.mark()
            finish.blobs_marked = len(marked.blobs)
            finish.manifests_scanned = marked.manifests
            finish.mark_ms = int(marked.seconds * 1000)
            self.metrics.gc_mark_seconds.set(marked.seconds)
            for first in range(0, len(marked.blobs), BATCH):
                over = time_limit_s and time.monotonic() - started > time_limit_s
                if first and over:
                    finish.outcome = "time limit"
                    break
                await lease.renew_if_due()
                batch = marked.blobs[first : first + BATCH]
                result = await registry.propose_result(
                    pb.Command(
                        collect_blobs=pb.CollectBlobs(
                            epoch=epoch, blobs=batch, at_ms=int(time.time() * 1000)
                        )
                    )
                )
                removed, freed = (int(n) for n in result.message.split())
                finish.blobs_collected += removed
                finish.bytes_collected += freed
        except Exception as e:
            finish.outcome = f"failed: {e}"[:300]
            raise
        finally:
            finish.at_ms = int(time.time() * 1000)
            await self._finish(finish)
        return registry.state.view(gc_runs.run, epoch) or pb.CollectionRun(epoch=epoch)

    async def _finish(self, finish: pb.FinishCollection) -> None:
        outcome = finish.outcome.split(":", 1)[0]
        self.metrics.gc_runs.labels(outcome).inc()
        self.metrics.gc_blobs_collected.inc(finish.blobs_collected)
        self.metrics.gc_bytes_collected.inc(finish.bytes_collected)
        self.metrics.gc_last_run.set(time.time())
        log.info(
            "collection %d %s: %d of %d marked blobs removed (%d bytes), mark %d ms",
            finish.epoch,
            finish.outcome,
            finish.blobs_collected,
            finish.blobs_marked,
            finish.bytes_collected,
            finish.mark_ms,
            extra={
                "fields": {
                    "epoch": finish.epoch,
                    "outcome": finish.outcome,
                    "blobs": finish.blobs_collected,
                    "bytes": finish.bytes_collected,
                    "marked": finish.blobs_marked,
                    "mark_ms": finish.mark_ms,
                }
            },
        )
        try:
            await self.registry.propose(pb.Command(finish_collection=finish))
        except RegistryError as e:
            log.warning("recording the end of collection %d failed: %s", finish.epoch, e)
