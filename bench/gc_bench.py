#!/usr/bin/env python3
"""Garbage collection benchmark.

1. The state machine and one replica's disk, in this process: a state of 100,000
   blobs and 20,000 manifests (each references a config and two layers; the rest is
   garbage), then the mark (time, memory), the CollectBlobs entries applied in
   batches of 500 (sweep of the metadata), and the deletion of the collected files
   (files/s, MiB/s).
2. Three replica processes: pushes of small images (4 threads, random replicas) for
   a while idle, then as long again while collections run back to back; push
   throughput and p99 manifest PUT latency, and their ratios.

  .venv/bin/python bench/gc_bench.py [--blobs 100000] [--manifests 20000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from consensus import MetadataState, gc
from proto import commands_pb2 as pb
from replica.blobs.store import LocalBlobStore
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, image_of, layer


def digest_of(n: int) -> str:
    return f"sha256:{n:064x}"


def build_state(path: str, blobs: int, manifests: int) -> MetadataState:
    state = MetadataState(path)
    index = 0

    def apply(**kind: object) -> None:
        nonlocal index
        index += 1
        state.apply(index, pb.Command(**kind).SerializeToString())  # type: ignore[arg-type]

    apply(begin_collection=pb.BeginCollection(at_ms=1, replica_id="r0"))
    for n in range(blobs):
        apply(
            link_blob=pb.LinkBlob(
                repository=f"repo/{(n // 3) % 50}",
                digest=digest_of(n),
                size=16384,
                replica_id="r0",
                at_ms=1,
                seen={"r0": 0},
            )
        )
    for m in range(manifests):
        refs = [digest_of(3 * m), digest_of(3 * m + 1), digest_of(3 * m + 2)]
        body = json.dumps(
            {
                "schemaVersion": 2,
                "config": {"digest": refs[0], "size": 16384},
                "layers": [{"digest": d, "size": 16384} for d in refs[1:]],
            }
        ).encode()
        apply(
            put_manifest=pb.PutManifest(
                repository=f"repo/{m % 50}",
                digest=f"sha256:{m + 10**9:064x}",
                media_type="application/vnd.oci.image.manifest.v1+json",
                body=body,
                blob_digests=refs,
            )
        )
    apply(begin_collection=pb.BeginCollection(at_ms=2, replica_id="r0"))  # this run's epoch
    return state


def state_and_disk(blobs: int, manifests: int) -> None:
    work = tempfile.mkdtemp(prefix="gc-bench-")
    try:
        started = time.perf_counter()
        state = build_state(os.path.join(work, "state"), blobs, manifests)
        print(
            f"built {blobs} blobs, {manifests} manifests in {time.perf_counter() - started:.1f} s"
        )
        store = LocalBlobStore(os.path.join(work, "storage"))
        chunk = os.urandom(16384)
        tracemalloc.start()
        started = time.perf_counter()
        epoch, garbage = state.view(gc.mark, 10**13, 0)
        mark_s = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"mark: {len(garbage)} garbage of {blobs} blobs in {mark_s:.2f} s, "
            f"peak Python memory {peak / (1 << 20):.1f} MiB "
            f"(process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
        )
        # The collected blobs' files (as if pushed), written before the collection.
        for blob in garbage:
            path = store.path(blob.digest)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(chunk)
        index = state.applied_index()
        started = time.perf_counter()
        for first in range(0, len(garbage), 500):
            index += 1
            command = pb.Command(
                collect_blobs=pb.CollectBlobs(
                    epoch=epoch, blobs=garbage[first : first + 500], at_ms=2
                )
            )
            state.apply(index, command.SerializeToString())
        sweep_s = time.perf_counter() - started
        assert not state.view(gc.blob_recorded, garbage[0].digest)
        print(f"sweep (metadata, {len(garbage) // 500 + 1} entries): {sweep_s:.2f} s")
        os.sync()
        before = time.time()
        started = time.perf_counter()
        freed = 0
        for blob in garbage:
            freed += (
                store.delete_if_older(
                    blob.digest, before, lambda d=blob.digest: not state.view(gc.blob_recorded, d)
                )
                or 0
            )
        files_s = time.perf_counter() - started
        print(
            f"files: {len(garbage)} deleted in {files_s:.2f} s = "
            f"{len(garbage) / files_s:,.0f} files/s, "
            f"{freed / (1 << 20) / files_s:,.0f} MiB/s of 16 KiB files"
        )
        state.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pushes(cluster: LocalCluster, seconds: float, pool: list) -> tuple[float, float]:
    """(images pushed per second, p99 manifest PUT seconds) over `seconds`."""
    latencies: list[float] = []
    count = [0]
    until = time.monotonic() + seconds
    lock = threading.Lock()

    def push(tid: int) -> None:
        rnd = random.Random(tid)
        n = 0
        clients = [cluster.client(i) for i in range(3)]
        while time.monotonic() < until:
            n += 1
            client = rnd.choice(clients)
            layers = rnd.sample(pool, 2)
            config, top = image_of(layers, label=f"{tid}-{n}-{time.time()}")
            try:
                for blob in (config, *layers):
                    if client.head(f"/v2/bench/p{tid}/blobs/{blob.digest}").status_code != 200:
                        client.post(
                            f"/v2/bench/p{tid}/blobs/uploads/",
                            params={"digest": blob.digest},
                            content=blob.data,
                        ).raise_for_status()
                t = time.perf_counter()
                r = client.put(
                    f"/v2/bench/p{tid}/manifests/t{n}",
                    content=top.data,
                    headers={"Content-Type": OCI_MANIFEST},
                )
                took = time.perf_counter() - t
                if r.status_code == 201:
                    with lock:
                        latencies.append(took)
                        count[0] += 1
                    if rnd.random() < 0.5:  # half of them deleted again: garbage to collect
                        client.delete(
                            f"/v2/bench/p{tid}/manifests/{r.headers['Docker-Content-Digest']}"
                        )
            except httpx.HTTPError:
                pass
        for c in clients:
            c.close()

    threads = [threading.Thread(target=push, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
    return count[0] / seconds, p99


def cluster_runs(seconds: float) -> None:
    work = tempfile.mkdtemp(prefix="gc-bench-cluster-")
    cluster = LocalCluster(os.path.join(work, "data"), replicas=3, env={"QREG_GC_GRACE_S": "0"})
    cluster.start()
    try:
        pool = [layer(f"bench{n}", 100_000) for n in range(16)]
        idle_rate, idle_p99 = pushes(cluster, seconds, pool)
        stop = threading.Event()
        runs = [0]

        def collect() -> None:
            with cluster.client(0, timeout=120) as client:
                while not stop.is_set():
                    if client.post("/api/v0/gc/runs", json={}).status_code == 200:
                        runs[0] += 1

        collector = threading.Thread(target=collect)
        collector.start()
        busy_rate, busy_p99 = pushes(cluster, seconds, pool)
        stop.set()
        collector.join()
        print(
            f"pushes/s idle {idle_rate:.1f}, during GC {busy_rate:.1f} "
            f"(ratio {busy_rate / idle_rate:.2f}); manifest PUT p99 idle "
            f"{idle_p99 * 1000:.1f} ms, during GC {busy_p99 * 1000:.1f} ms "
            f"(ratio {busy_p99 / idle_p99:.2f}); {runs[0]} collections ran"
        )
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--manifests", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    state_and_disk(args.blobs, args.manifests)
    if not args.skip_cluster:
        cluster_runs(args.seconds)


if __name__ == "__main__":
    main()
