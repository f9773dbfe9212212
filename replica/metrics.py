"""Prometheus metrics of one replica, in a registry of its own (no global state)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from replica import pki

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _ImportCollector(Collector):
    def __init__(self, importer: Any, proxies: Any) -> None:
        self._importer = importer
        self._proxies = proxies

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "qreg_import_blobs",
            "Blobs this replica fetched from other registries (pull mirrors, proxies)",
            value=self._importer.blobs_fetched,
        )
        yield CounterMetricFamily(
            "qreg_import_bytes",
            "Bytes of those blobs",
            value=self._importer.bytes_fetched,
        )
        if self._proxies is not None:
            yield CounterMetricFamily(
                "qreg_proxy_upstream_checks",
                "Tags of proxy repositories looked up upstream by this replica",
                value=self._proxies.upstream_checks,
            )
            yield CounterMetricFamily(
                "qreg_proxy_served_stale",
                "Cached tags served while their upstream could not be reached",
                value=self._proxies.served_stale,
            )


class _RaftCollector(Collector):
    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self._status()
        for key in ("term", "commit_index", "applied_index"):
            yield GaugeMetricFamily(
                f"qreg_raft_{key}", f"Raft {key.replace('_', ' ')}", value=status.get(key) or 0
            )
        yield GaugeMetricFamily(
            "qreg_raft_is_leader",
            "1 if this replica is the Raft leader",
            value=1 if status.get("role") == "leader" else 0,
        )
        yield GaugeMetricFamily(
            "qreg_raft_has_quorum",
            "1 if a majority is reachable",
            value=1 if status.get("has_quorum") else 0,
        )
        yield GaugeMetricFamily(
            "qreg_raft_log_entries",
            "Entries in the Raft log since the last snapshot",
            value=status.get("log_entries") or 0,
        )
        yield GaugeMetricFamily(
            "qreg_raft_log_bytes",
            "Bytes of the commands in the Raft log since the last snapshot (held in memory)",
            value=status.get("log_bytes") or 0,
        )
        yield GaugeMetricFamily(
            "qreg_raft_snapshot_index",
            "Raft index of the latest snapshot this replica holds",
            value=status.get("snapshot_index") or 0,
        )
        yield GaugeMetricFamily(
            "qreg_raft_snapshot_write_seconds",
            "How long writing the latest snapshot took (off the Raft thread)",
            value=status.get("snapshot_write_seconds") or 0,
        )


class _NodeCollector(Collector):
    """Disk room of the data directory and when the TLS certificates expire: what an
    operator is warned about before users notice."""

    def __init__(self, data_dir: str, certificates: dict[str, str]) -> None:
        self._data_dir = data_dir
        self._certificates = certificates

    def collect(self) -> Iterator[GaugeMetricFamily]:
        usage = shutil.disk_usage(self._data_dir)
        yield GaugeMetricFamily(
            "qreg_disk_free_bytes", "Free bytes on the data directory's disk", value=usage.free
        )
        yield GaugeMetricFamily(
            "qreg_disk_total_bytes", "Size of the data directory's disk", value=usage.total
        )
        expiry = GaugeMetricFamily(
            "qreg_tls_cert_expiry_timestamp_seconds",
            "When each certificate this replica uses expires (Unix time)",
            labels=["cert"],
        )
        for name, path in sorted(self._certificates.items()):
            try:
                with open(path, "rb") as f:
                    expiry.add_metric([name], pki.expires_at(f.read()))
            except (OSError, ValueError):
                continue
        yield expiry


class _BlobSyncCollector(Collector):
    def __init__(self, sync: Any) -> None:
        self._sync = sync

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            "qreg_blobs_to_sync",
            "Blobs this replica lacks and should hold",
            value=self._sync.missing_blobs,
        )
        yield GaugeMetricFamily(
            "qreg_blob_bytes_to_sync", "Bytes of those blobs", value=self._sync.missing_bytes
        )
        yield CounterMetricFamily(
            "qreg_blob_sync_failed_rounds",
            "Background blob sync rounds that ended in an error (logged)",
            value=self._sync.failed_rounds,
        )
        yield GaugeMetricFamily(
            "qreg_blobs_unavailable",
            "Blobs the metadata lists that no replica holds (lost, or not restored)",
            value=self._sync.unavailable_blobs,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "qreg_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "qreg_http_request_seconds",
            "Time to the response's headers",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.blob_bytes_sent = Counter(
            "qreg_blob_bytes_sent", "Blob bytes sent to clients", registry=self.registry
        )
        self.cache_redirects = Counter(
            "qreg_cache_redirects",
            "Blob pulls sent to a user's cache (307)",
            registry=self.registry,
        )
        self.blob_bytes_received = Counter(
            "qreg_blob_bytes_received", "Blob bytes received from clients", registry=self.registry
        )
        self.scrub_blobs = Counter(
            "qreg_scrub_blobs_checked", "Blobs re-hashed by the scrub", registry=self.registry
        )
        self.scrub_bytes = Counter(
            "qreg_scrub_bytes_checked", "Bytes re-hashed by the scrub", registry=self.registry
        )
        self.scrub_corrupt = Counter(
            "qreg_scrub_corrupt_blobs",
            "Blobs whose bytes no longer matched their digest",
            registry=self.registry,
        )
        self.scrub_repaired = Counter(
            "qreg_scrub_repaired_blobs",
            "Corrupt blobs replaced by a good copy from a peer",
            registry=self.registry,
        )
        self.scrub_completed = Gauge(
            "qreg_scrub_last_completed_timestamp_seconds",
            "When the last scrub ended (Unix time)",
            registry=self.registry,
        )

        self.blob_store_reachable = Gauge(
            "qreg_blob_store_reachable",
            "1 while this replica reaches its blob store (an object store is asked "
            "every 5 s; a local disk always counts)",
            registry=self.registry,
        )
        self.blob_store_reachable.set(1)

        self.state_diverged = Gauge(
            "qreg_state_diverged",
            "1 when this replica's metadata differs from its own digest "
            "or from a peer's at the same index",
            registry=self.registry,
        )
        self.state_checks = Counter(
            "qreg_state_digest_checks",
            "State digest comparisons with peers",
            registry=self.registry,
        )
        self._gc_metrics()
        self.proposal_seconds = Histogram(
            "qreg_raft_proposal_seconds",
            "Time from proposing a command to its result (commit and apply)",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _gc_metrics(self) -> None:
        self.gc_runs = Counter(
            "qreg_gc_runs",
            "Garbage collections this replica ran, by how they ended",
            ["outcome"],
            registry=self.registry,
        )
        self.gc_blobs_collected = Counter(
            "qreg_gc_blobs_collected",
            "Blobs removed from the cluster by collections this replica ran",
            registry=self.registry,
        )
        self.gc_bytes_collected = Counter(
            "qreg_gc_bytes_collected",
            "Bytes of the blobs removed by collections this replica ran",
            registry=self.registry,
        )
        self.gc_mark_seconds = Gauge(
            "qreg_gc_mark_seconds", "How long the last mark took", registry=self.registry
        )
        self.gc_last_run = Gauge(
            "qreg_gc_last_run_timestamp_seconds",
            "When the last collection this replica ran ended (Unix time)",
            registry=self.registry,
        )
        self.gc_files_deleted = Counter(
            "qreg_gc_files_deleted",
            "Files of collected blobs deleted from this replica's disk",
            registry=self.registry,
        )
        self.gc_bytes_freed = Counter(
            "qreg_gc_bytes_freed", "Bytes freed on this replica's disk", registry=self.registry
        )
        self.gc_sweep_errors = Counter(
            "qreg_gc_sweep_errors",
            "Files of collected blobs this replica could not delete",
            registry=self.registry,
        )

    def scan_metrics(self, scanner: Any) -> None:
        self.scans = Counter(
            "qreg_scans",
            "Images scanned by this replica, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.scan_seconds = Histogram(
            "qreg_scan_seconds",
            "Time to scan one manifest (inventory and matching)",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 120),
        )
        queued = Gauge(
            "qreg_scans_queued", "Manifests waiting to be scanned here", registry=self.registry
        )
        queued.set_function(lambda: float(scanner.pending))

    def watch_gc_sweeper(self, sweeper: Any) -> None:
        gauge = Gauge(
            "qreg_gc_files_pending",
            "Collected blobs whose files this replica has still to delete",
            registry=self.registry,
        )
        gauge.set_function(lambda: float(sweeper.pending))

    def watch_node(self, data_dir: str, certificates: dict[str, str]) -> None:
        self.registry.register(_NodeCollector(data_dir, certificates))

    def watch_raft(self, status: Callable[[], dict[str, Any]]) -> None:
        self.registry.register(_RaftCollector(status))

    def watch_imports(self, importer: Any, proxies: Any) -> None:
        """Images copied in from other registries (pull mirrors, proxy repositories)."""
        self.registry.register(_ImportCollector(importer, proxies))

    def watch_blob_sync(self, sync: Any) -> None:
        self.registry.register(_BlobSyncCollector(sync))

    def observe(self, route: str, method: str, status: int, started: float) -> None:
        # labels() hashes, locks and validates on every call: keep the children.
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)
