#!/usr/bin/env python3
"""Cluster benchmark: what replication costs and how fast the cluster recovers.

- synchronous tag writes/s through the API (wrk, 16 connections, unique tags),
  on one replica and on three (through the leader and through a follower);
- manifest GETs by tag/s on a leader and on a follower (a follower waits for the
  leader's commit index before answering: ReadIndex);
- time for a new replica to join a cluster holding 10,000 tags and catch up.

  .venv/bin/python bench/cluster_bench.py [--tags 10000]

Failover (the leader killed or stopped under write load) is bench/failover_bench.py's.
  QREG_RAFT_UNSAFE_SKIP_FSYNC=true .venv/bin/python bench/cluster_bench.py   # durability off
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST
from tests.replication.test_three_replicas import push_image

_PUT_SCRIPT = """
counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local body = io.open("%s"):read("*a")
request = function()
  counter = counter + 1
  -- wrk.format's headers replace wrk.headers (the -H ones, Authorization): merge them.
  local headers = {["Content-Type"] = "%s"}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  -- unique per run, per wrk thread (tid) and per request (counter)
  local tag = string.format("t%%d-%%d-%%d", %d, tid, counter)
  return wrk.format("PUT", "/v2/bench/tags/manifests/" .. tag, headers, body)
end
"""


def wrk_run(
    url: str,
    seconds: int,
    script: str | None = None,
    connections: int = 16,
    headers: tuple[str, ...] = (),
) -> tuple[float, float]:
    """Requests/s and p99 latency in ms."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        argv += ["-s", script]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        sys.exit(f"wrk saw failures against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return rps, float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]


def tag_writes(cluster: LocalCluster, index: int, work: str, seconds: int) -> tuple[float, float]:
    manifest = push_image(cluster.urls[0], "bench/tags", "seed", "seed")
    body = os.path.join(work, "manifest.json")
    with open(body, "wb") as f:
        f.write(manifest.data)
    script = os.path.join(work, f"put{index}.lua")
    with open(script, "w") as f:
        f.write(_PUT_SCRIPT % (body, OCI_MANIFEST, index))
    token = cluster.auth.bearer(cluster.url, "bench/tags")["Authorization"]
    return wrk_run(cluster.urls[index], seconds, script, headers=(f"Authorization: {token}",))


def manifest_gets(cluster: LocalCluster, index: int, seconds: int) -> float:
    token = cluster.auth.bearer(cluster.url, "bench/tags", "pull")["Authorization"]
    return wrk_run(
        f"{cluster.urls[index]}/v2/bench/tags/manifests/seed",
        seconds,
        connections=64,
        headers=(f"Accept: {OCI_MANIFEST}", f"Authorization: {token}"),
    )[0]


def join_time(cluster: LocalCluster, tags: int, work: str) -> float:
    manifest = push_image(cluster.urls[0], "bench/join", "seed", "join")
    with cluster.client() as client:

        def write(k: int) -> None:
            for n in range(k, tags, 8):
                client.put(
                    f"/v2/bench/join/manifests/j{n}",
                    content=manifest.data,
                    headers={"Content-Type": OCI_MANIFEST},
                ).raise_for_status()

        threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    started = time.monotonic()
    joiner, url = cluster.join_replica(os.path.join(work, "joiner"), "replica-9")
    try:
        while True:
            try:
                view = httpx.get(url + "/health", timeout=1).json()
                target = cluster.health(0)["commit_index"]
                if view["applied_index"] >= target:
                    return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
    finally:
        joiner.terminate()
        joiner.wait(timeout=30)


def _writes(where: str, measured: tuple[float, float]) -> list[tuple[str, str]]:
    rps, p99 = measured
    return [
        (f"tag writes/s, {where}", f"{rps:,.0f}"),
        (f"manifest push p99 (ms), {where}", f"{p99:.1f}"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tags", type=int, default=10000, help="tags in the cluster a replica joins"
    )
    parser.add_argument("--seconds", type=int, default=8, help="duration of each load test")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-cluster-bench-")
    rows: list[tuple[str, str]] = []
    try:
        single = LocalCluster(os.path.join(work, "one"), replicas=1).start()
        try:
            rows += _writes("1 replica", tag_writes(single, 0, work, args.seconds))
            rows.append(
                (
                    "manifest GET by tag/s, 1 replica",
                    f"{manifest_gets(single, 0, args.seconds):,.0f}",
                )
            )
        finally:
            single.stop()
        three = LocalCluster(os.path.join(work, "three"), replicas=3).start()
        try:
            leader = three.leader()
            follower = (leader + 1) % 3
            rows += _writes("3 replicas, via leader", tag_writes(three, leader, work, args.seconds))
            rows += _writes(
                "3 replicas, via follower", tag_writes(three, follower, work, args.seconds)
            )
            rows.append(
                (
                    "manifest GET by tag/s, leader",
                    f"{manifest_gets(three, leader, args.seconds):,.0f}",
                )
            )
            rows.append(
                (
                    "manifest GET by tag/s, follower",
                    f"{manifest_gets(three, follower, args.seconds):,.0f}",
                )
            )
            rows.append(
                (
                    f"join a cluster holding {args.tags:,} tags, until caught up (s)",
                    f"{join_time(three, args.tags, work):.1f}",
                )
            )
        finally:
            three.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
