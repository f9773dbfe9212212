#!/usr/bin/env python3
"""Blob service benchmark: what replicating blob bytes costs.

- push of a fresh 512 MiB blob (monolithic POST, and POST + one PATCH + PUT as
  skopeo and docker do) to one replica and to three, whose push is acknowledged
  only once a majority holds the blob: MiB/s and the ratio three/one;
- replication throughput between replicas: a replica that was down while
  blobs were pushed copies them in the background once it is back (MiB/s);
- time for a replica joining a cluster that holds 2 GiB of blobs to hold them all.

  .venv/bin/python bench/blob_bench.py [--size-mib 512] [--join-gib 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.cluster import LocalCluster

MIB = 1 << 20


def _blob(size: int) -> tuple[bytes, str]:
    data = os.urandom(size)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for offset in range(0, len(view), MIB):
        yield bytes(view[offset : offset + MIB])


def push(cluster: LocalCluster, repository: str, data: bytes, digest: str, chunked: bool) -> float:
    """Seconds for one push of `data` through replica 0, acknowledged with 201."""
    token = cluster.auth.bearer(cluster.url, repository)  # before the clock starts
    with httpx.Client(base_url=cluster.url, timeout=600, headers=token) as client:
        started = time.monotonic()
        headers = {"Content-Length": str(len(data)), "Content-Type": "application/octet-stream"}
        if chunked:
            r = client.post(f"/v2/{repository}/blobs/uploads/")
            r.raise_for_status()
            r = client.patch(r.headers["location"], content=_chunks(data), headers=headers)
            r.raise_for_status()
            r = client.put(r.headers["location"], params={"digest": digest})
        else:
            r = client.post(
                f"/v2/{repository}/blobs/uploads/",
                params={"digest": digest},
                content=_chunks(data),
                headers=headers,
            )
        r.raise_for_status()
        assert r.status_code == 201, r.status_code
        return time.monotonic() - started


def push_rates(cluster: LocalCluster, size: int, runs: int, chunked: bool) -> float:
    """Median MiB/s of `runs` pushes of fresh blobs."""
    seconds = []
    for _ in range(runs):
        data, digest = _blob(size)
        seconds.append(push(cluster, "bench/push", data, digest, chunked))
    return size / MIB / statistics.median(seconds)


def _fill(cluster: LocalCluster, total: int, blob_size: int) -> int:
    pushed = 0
    while pushed < total:
        data, digest = _blob(min(blob_size, total - pushed))
        push(cluster, "bench/fill", data, digest, chunked=False)
        pushed += len(data)
    return pushed


def _until_synced(url: str) -> None:
    while True:
        try:
            health = httpx.get(url + "/health", timeout=2).json()
            if health.get("blobs_missing") == 0 and health.get("applied_index", 0) > 0:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)


def catch_up_rate(cluster: LocalCluster, total: int) -> float:
    """MiB/s at which a restarted replica copies what was pushed while it was down."""
    cluster.sigkill(2)
    pushed = _fill(cluster, total, 64 * MIB)
    started = time.monotonic()
    cluster.restart(2)
    _until_synced(cluster.urls[2])
    return pushed / MIB / (time.monotonic() - started)


def join_seconds(cluster: LocalCluster, work: str) -> float:
    """Seconds from `qreg join` until the new replica holds every blob of the cluster."""
    started = time.monotonic()
    joiner, url = cluster.join_replica(os.path.join(work, "joiner"), "replica-9")
    try:
        _until_synced(url)
        return time.monotonic() - started
    finally:
        joiner.terminate()
        joiner.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512, help="size of each pushed blob")
    parser.add_argument("--runs", type=int, default=3, help="pushes per measure (median)")
    parser.add_argument(
        "--join-gib", type=float, default=2.0, help="blobs a joining replica copies"
    )
    parser.add_argument(
        "--work",
        default=None,
        help="where the replicas keep data (e.g. /dev/shm, to take the one disk "
        "that local replicas share out of the measure)",
    )
    args = parser.parse_args()
    size = args.size_mib * MIB
    work = tempfile.mkdtemp(prefix="qreg-blob-bench-", dir=args.work)
    rows: list[tuple[str, str]] = []
    try:
        rates: dict[tuple[int, bool], float] = {}
        for replicas in (1, 3):
            cluster = LocalCluster(os.path.join(work, f"push{replicas}"), replicas=replicas).start()
            try:
                for chunked in (False, True):
                    rates[replicas, chunked] = push_rates(cluster, size, args.runs, chunked)
            finally:
                cluster.stop()
            shutil.rmtree(os.path.join(work, f"push{replicas}"), ignore_errors=True)
        for chunked, kind in ((False, "monolithic"), (True, "POST+PATCH+PUT")):
            one, three = rates[1, chunked], rates[3, chunked]
            rows.append((f"push {args.size_mib} MiB {kind}, 1 replica (MiB/s)", f"{one:.0f}"))
            rows.append((f"push {args.size_mib} MiB {kind}, 3 replicas (MiB/s)", f"{three:.0f}"))
            rows.append(("  ratio 3 replicas / 1", f"{three / one:.2f}x"))
        total = int(args.join_gib * 1024) * MIB
        cluster = LocalCluster(os.path.join(work, "sync"), replicas=3).start()
        try:
            rows.append(
                (
                    f"replica back from downtime copies {total // MIB} MiB (MiB/s)",
                    f"{catch_up_rate(cluster, total):.0f}",
                )
            )
            rows.append(
                (
                    f"join a cluster holding {args.join_gib:g} GiB of blobs, until it "
                    "holds them all (s)",
                    f"{join_seconds(cluster, work):.1f}",
                )
            )
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
