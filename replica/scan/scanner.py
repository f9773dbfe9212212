"""The scanner of one replica: after a push, and every few seconds for images without
a report for the current database, it inventories layers (once per layer, stored in
the state), matches the image's packages against the database, and records a report.

Work is spread over replicas: a manifest belongs to the member its digest hashes
highest with (rendezvous hashing): it scans it at once if the push came to it, else
at its next sweep. If that replica dies (or dies mid-scan), the next member in the
order takes the manifest once it has waited TAKEOVER_S unscanned. A newer
database version makes every report stale: they are redone from the stored
inventories, without reading a layer again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import zlib
from typing import Any

from consensus import scans
from proto import commands_pb2 as pb
from replica.blobs.peer_fetch import copy_from_holders
from replica.blobs.store import local_file
from replica.errors import RegistryError
from replica.metrics import Metrics
from replica.registry import Registry
from replica.rendezvous import ranked
from replica.scan import layers, matching
from replica.scan.osv import OsvIndex

log = logging.getLogger("qreg.scan")

SWEEP_EVERY_S = 5.0
TAKEOVER_S = 15.0  # a manifest its owner has not scanned by then goes to the next member
QUEUE_MAX = 10_000
_INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class Scanner:
    def __init__(self, registry: Registry, data_dir: str, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics
        self._root = os.path.join(data_dir, "scan-index")
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(QUEUE_MAX)
        self._queued: set[str] = set()
        # digest -> (failures so far, monotonic time before which the sweep skips it)
        self._failed: dict[str, tuple[int, float]] = {}
        self.index: OsvIndex | None = None
        self.index_version = 0
        self.scanning = ""
        metrics.scan_metrics(self)

    @property
    def pending(self) -> int:
        return len(self._queued)

    def waiting(self, digest: str) -> bool:
        return digest in self._queued or self.scanning == digest

    def pushed(self, repository: str, digest: str) -> None:
        """A push committed here: scan it now if it is this replica's to scan."""
        members = self.registry.replication.member_ids() or [self.registry.replica_id]
        if ranked(digest, members)[0] == self.registry.replica_id:
            self.enqueue(repository, digest)

    def enqueue(self, repository: str, digest: str) -> None:
        """Scan soon (a push; a rescan asked for). Never waits: a full queue drops it,
        and the sweep finds it again."""
        if digest in self._queued:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait((repository, digest))
            self._queued.add(digest)

    async def run(self) -> None:
        worker = asyncio.create_task(self._work())
        try:
            while True:
                try:
                    await self._sweep()
                except Exception:
                    log.exception("the scan sweep failed; it runs again")
                await asyncio.sleep(SWEEP_EVERY_S)
        finally:
            worker.cancel()

    async def _sweep(self) -> None:
        database = self.registry.state.view(scans.database)
        if not database.version:
            return
        if database.version != self.index_version:
            await self._build_index(database)
        members = self.registry.replication.member_ids() or [self.registry.replica_id]
        stale = await asyncio.to_thread(self.registry.state.view, scans.unscanned, database.version)
        now_ms = time.time() * 1000
        for repository, digest, pushed_ms in stale:
            failed = self._failed.get(digest)
            if failed is not None and time.monotonic() < failed[1]:
                continue  # it failed lately: retried later, less and less often
            order = ranked(digest, members)
            rank = order.index(self.registry.replica_id) if self.registry.replica_id in order else 0
            since = max(pushed_ms, database.updated_ms)
            if now_ms - since >= rank * TAKEOVER_S * 1000:
                self.enqueue(repository, digest)

    async def _build_index(self, database: pb.ScanDatabase) -> None:
        """This replica's index of the database's archives (fetched from peers if need be)."""
        digests = []
        for archive in database.archives:
            if self.registry.store.stat(archive.digest) is None:
                seen = self.registry.replication.collections_seen()
                size = await copy_from_holders(self.registry.replication, archive.digest)
                if size is None:
                    log.warning("archive %s is on no replica that answers", archive.name)
                    return
                with contextlib.suppress(RegistryError):
                    await self.registry.replication.record_copy(archive.digest, size, seen)
            digests.append(archive.digest)
        target = os.path.join(self._root, f"v{database.version}")
        OsvIndex.remove(target)

        def build() -> OsvIndex:
            index = OsvIndex(target)
            with contextlib.ExitStack() as files:
                handles = [
                    files.enter_context(open(files.enter_context(local_file(store, d)), "rb"))
                    for d in digests
                ]
                index.build(handles)  # type: ignore[arg-type]
            return index

        store = self.registry.store

        started = time.monotonic()
        index = await asyncio.to_thread(build)
        old, self.index, self.index_version = self.index, index, database.version
        if old is not None:
            old.close()
            OsvIndex.remove(old.path)
        log.info(
            "vulnerability database version %d indexed in %.1f s",
            database.version,
            time.monotonic() - started,
            extra={"fields": {"event": "scan_db_indexed", "version": database.version}},
        )

    async def _work(self) -> None:
        while True:
            repository, digest = await self._queue.get()
            self.scanning = digest
            started = time.monotonic()
            try:
                report = await self.scan(repository, digest)
                self._failed.pop(digest, None)
                self.metrics.scans.labels("done").inc()
                if report is not None:
                    log.info(
                        "scanned %s of %s: %s",
                        digest,
                        repository,
                        dict(report.summary) or "no findings",
                        extra={
                            "fields": {
                                "event": "scan_done",
                                "digest": digest,
                                "seconds": round(time.monotonic() - started, 3),
                                **{f"findings_{k}": v for k, v in report.summary.items()},
                            }
                        },
                    )
            except Exception as e:
                count = self._failed.get(digest, (0, 0.0))[0] + 1
                self._failed[digest] = (count, time.monotonic() + min(10 * 2**count, 600))
                if len(self._failed) > QUEUE_MAX:
                    self._failed.pop(next(iter(self._failed)))
                self.metrics.scans.labels("failed").inc()
                log.warning(
                    "scanning %s failed: %s",
                    digest,
                    e,
                    extra={"fields": {"event": "scan_failed", "digest": digest}},
                )
            finally:
                self.metrics.scan_seconds.observe(time.monotonic() - started)
                self._queued.discard(digest)
                self.scanning = ""

    async def scan(self, repository: str, digest: str) -> pb.PutScanReport | None:
        """Scan one manifest now (an index: each of its platforms); its report, or None
        while no database is imported (the layers are inventoried all the same)."""
        state = self.registry.state
        manifest = state.manifest(repository, digest)
        if manifest is None:
            return None
        doc = json.loads(manifest.body)
        findings: list[dict[str, Any]] = []
        error = ""
        if manifest.media_type in _INDEXES or "manifests" in doc:
            for child in doc.get("manifests") or []:
                platform = child.get("platform") or {}
                label = "/".join(x for x in (platform.get("os"), platform.get("architecture")) if x)
                report = await self.scan(repository, child.get("digest", ""))
                if report is not None and report.findings:
                    for f in json.loads(zlib.decompress(report.findings)):
                        findings.append({**f, "platform": label})
        else:
            inventories = []
            for layer in doc.get("layers") or []:
                inventories.append(await self._inventory(layer.get("digest", "")))
            found, release = layers.stack(inventories)
            if self.index is None:
                return None
            results = await asyncio.to_thread(matching.match, self.index, found, release)
            findings = [f.as_dict() for f in results]
            if not release and not found:
                error = "no package database found in the image"
        counts: dict[str, int] = {}
        for f in findings:
            counts[f["severity"]] = counts.get(f["severity"], 0) + 1
        report = pb.PutScanReport(
            manifest=digest,
            db_version=self.index_version,
            at_ms=int(time.time() * 1000),
            findings=zlib.compress(json.dumps(findings, separators=(",", ":")).encode()),
            error=error,
            scanned_by=self.registry.replica_id,
            repository=repository,
        )
        for severity, n in counts.items():
            report.summary[severity] = n
        await self.registry.propose(pb.Command(put_scan_report=report))
        return report

    async def _inventory(self, digest: str) -> dict[str, Any]:
        stored = self.registry.state.view(scans.inventory, digest)
        if stored is not None:
            return dict(json.loads(zlib.decompress(stored)))
        store = self.registry.store
        if store.stat(digest) is None:
            seen = self.registry.replication.collections_seen()
            size = await copy_from_holders(self.registry.replication, digest)
            if size is None:
                raise RegistryError(f"layer {digest} is on no replica that answers")
            with contextlib.suppress(RegistryError):
                await self.registry.replication.record_copy(digest, size, seen)

        def read() -> dict[str, Any]:
            with store.open(digest) as f:
                try:
                    return layers.inventory(f)
                except Exception:  # not a tar (an artifact's layer): nothing to inventory
                    return {"files": {}, "whiteouts": [], "opaque": []}

        found = await asyncio.to_thread(read)
        data = zlib.compress(json.dumps(found, separators=(",", ":")).encode())
        await self.registry.propose(
            pb.Command(put_inventory=pb.PutInventory(layer=digest, data=data))
        )
        return found

    def packages(self, repository: str, digest: str) -> list[str]:
        """The image's packages as "kind name version", from stored inventories."""
        manifest = self.registry.state.manifest(repository, digest)
        if manifest is None:
            return []
        stacked = []
        for layer in json.loads(manifest.body).get("layers") or []:
            stored = self.registry.state.view(scans.inventory, layer.get("digest", ""))
            if stored is None:
                return []
            stacked.append(json.loads(zlib.decompress(stored)))
        found, _ = layers.stack(stacked)
        return [f"{p.kind} {p.name} {p.version}" for p in found]


def decode_findings(report: pb.PutScanReport) -> list[dict[str, Any]]:
    return list(json.loads(zlib.decompress(report.findings))) if report.findings else []
