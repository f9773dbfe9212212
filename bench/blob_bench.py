#!/usr/bin/env python3
"""Blob service benchmark: what replicating blob bytes costs.

- push of a fresh 512 MiB blob (monolithic POST, and POST + one PATCH + PUT as
  skopeo and docker do) to one replica and to three, whose push is acknowledged
  only once a majority holds the blob: MiB/s and the ratio three/one;
- the physical limit of a push to three on this machine: three verified (sha256),
  fsynced copies written at once to the one disk the local replicas share, as a
  replica writes them, and the push's ratio to it;
- CPU per GiB per copy: of the replicas receiving copies over gRPC (user and
  kernel time), and what the replica taking the push spends beyond a push to one;
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
import threading
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


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, kernel) CPU seconds a process has used so far, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def push_rates(
    cluster: LocalCluster, size: int, runs: int, chunked: bool
) -> tuple[float, list[tuple[float, float]]]:
    """Median MiB/s of `runs` pushes of fresh blobs through replica 0, and each
    replica's (user, kernel) CPU seconds per GiB pushed."""
    seconds = []
    before = [cpu_seconds(pid) for pid in cluster.pids]
    for _ in range(runs):
        data, digest = _blob(size)
        seconds.append(push(cluster, "bench/push", data, digest, chunked))
    gib = size * runs / (1 << 30)
    cpu = [
        ((u1 - u0) / gib, (k1 - k0) / gib)
        for (u0, k0), (u1, k1) in zip(before, (cpu_seconds(p) for p in cluster.pids), strict=True)
    ]
    return size / MIB / statistics.median(seconds), cpu


def physical_limit(work: str, data: bytes, copies: int = 3) -> float:
    """MiB/s of writing `copies` verified, fsynced copies of `data` at once, each by a
    thread of its own as a replica would (hash, write, fdatasync every 16 MiB and give
    the flushed pages back, fsync): the disk's and the CPUs' limit, no network."""

    def one(n: int) -> None:
        hasher = hashlib.sha256()
        fd = os.open(os.path.join(work, f"copy-{n}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            view = memoryview(data)
            for offset in range(0, len(view), 4 * MIB):
                chunk = view[offset : offset + 4 * MIB]
                hasher.update(chunk)
                os.write(fd, chunk)
                if (offset + 4 * MIB) % (16 * MIB) == 0:
                    os.fdatasync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.fsync(fd)
        finally:
            os.close(fd)
        hasher.hexdigest()

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    for n in range(copies):
        os.unlink(os.path.join(work, f"copy-{n}"))
    return len(data) / MIB / took


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
    parser.add_argument(
        "--push-only", action="store_true", help="only the pushes, their CPU and the limit"
    )
    args = parser.parse_args()
    size = args.size_mib * MIB
    work = tempfile.mkdtemp(prefix="qreg-blob-bench-", dir=args.work)
    rows: list[tuple[str, str]] = []
    try:
        rates: dict[tuple[int, bool], float] = {}
        cpu: dict[tuple[int, bool], list[tuple[float, float]]] = {}
        for replicas in (1, 3):
            cluster = LocalCluster(os.path.join(work, f"push{replicas}"), replicas=replicas).start()
            try:
                for chunked in (False, True):
                    rates[replicas, chunked], cpu[replicas, chunked] = push_rates(
                        cluster, size, args.runs, chunked
                    )
            finally:
                cluster.stop()
            shutil.rmtree(os.path.join(work, f"push{replicas}"), ignore_errors=True)
        limit = statistics.median(physical_limit(work, _blob(size)[0]) for _ in range(args.runs))
        rows.append(("physical limit: 3 verified, fsynced copies at once (MiB/s)", f"{limit:.0f}"))
        for chunked, kind in ((False, "monolithic"), (True, "POST+PATCH+PUT")):
            one, three = rates[1, chunked], rates[3, chunked]
            rows.append((f"push {args.size_mib} MiB {kind}, 1 replica (MiB/s)", f"{one:.0f}"))
            rows.append((f"push {args.size_mib} MiB {kind}, 3 replicas (MiB/s)", f"{three:.0f}"))
            rows.append(("  ratio 3 replicas / 1", f"{three / one:.2f}x"))
            rows.append(("  ratio 3 replicas / physical limit", f"{three / limit:.2f}x"))
            receivers = cpu[3, chunked][1:]
            user = sum(u for u, _ in receivers) / len(receivers)
            kernel = sum(k for _, k in receivers) / len(receivers)
            rows.append(("  receiving replica, CPU s per GiB per copy: user", f"{user:.2f}"))
            rows.append(("  receiving replica, CPU s per GiB per copy: kernel", f"{kernel:.2f}"))
            extra = sum(cpu[3, chunked][0]) - sum(cpu[1, chunked][0])
            rows.append(
                (
                    "  pushed-to replica, CPU s per GiB per copy beyond a push to one",
                    f"{extra / 2:.2f}",
                )
            )
        total = int(args.join_gib * 1024) * MIB
        cluster = LocalCluster(os.path.join(work, "sync"), replicas=3)
        try:
            if args.push_only:
                return 0
            cluster.start()
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
