#!/usr/bin/env python3
"""Large-state benchmark: what a cluster holding hundreds of thousands of tags costs.

- disk bytes written by the three replicas per 1,000 tag writes, measured over the
  last 20,000 tags before each level (snapshots copy the whole state: this shows
  whether their cost grows with it);
- time for a fourth replica to join and apply everything, and its peak memory;
- equal state digests on all four afterwards;
- catalog first page (n=100) as the admin, at each number of repositories.

  .venv/bin/python bench/large_state_bench.py --levels 100000,300000 --repos 3000,30000
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
import lmdb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST
from tests.replication.test_three_replicas import push_image


def written_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/io") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("write_bytes"))
    return total


def applied(cluster: LocalCluster, index: int = 0) -> int:
    return int(httpx.get(cluster.urls[index] + "/health", timeout=10).json()["applied_index"])


# Every tag gets a manifest of its own (an annotation differs), as real pushes do: the
# state then grows by a manifest record per tag, not only by a tag key.
_PUT_SCRIPT = """
counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local head = io.open("%s"):read("*a")
local tail = io.open("%s"):read("*a")
request = function()
  counter = counter + 1
  local headers = {["Content-Type"] = "%s"}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  -- unique across runs, wrk threads (tid) and requests (counter)
  local n = string.format("r%%d-%%d-%%d", %d, tid, counter)
  return wrk.format("PUT", "/v2/bench/tags/manifests/" .. n, headers, head .. n .. tail)
end
"""


def load_tags(cluster: LocalCluster, work: str, until: int, tag: int) -> None:
    """PUT unique tags through the leader with wrk until the log reaches `until`."""
    leader = cluster.leader()
    script = os.path.join(work, "put.lua")
    run = tag * 1000
    while applied(cluster, leader) < until:
        run += 1
        with open(script, "w") as f:
            f.write(
                _PUT_SCRIPT
                % (os.path.join(work, "head"), os.path.join(work, "tail"), OCI_MANIFEST, run)
            )
        left = until - applied(cluster, leader)
        seconds = max(2, min(30, left // 1500))
        token = cluster.auth.bearer(cluster.url, "bench/tags")["Authorization"]  # 5-minute tokens
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                "-c16",
                f"-d{seconds}s",
                "-s",
                script,
                "-H",
                f"Authorization: {token}",
                cluster.urls[leader],
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if "Non-2xx" in out:
            sys.exit(f"tag writes failed:\n{out}")
        print(f"  {applied(cluster, leader):,} entries", file=sys.stderr, flush=True)


def snapshot_cost(cluster: LocalCluster) -> tuple[float, float, float, int]:
    """(snapshot MiB, keys in the state, MiB of snapshots per 1,000 writes as now spaced,
    and as they were: every 20,000 entries)."""
    data = os.path.join(cluster.data, "replica-0")
    env = lmdb.open(os.path.join(data, "metadata"), readonly=True, max_readers=4, map_size=1 << 36)
    try:
        keys = int(env.stat()["entries"])
    finally:
        env.close()
    size = os.stat(os.path.join(data, "raft", "snapshot")).st_size / (1 << 20)
    now = size / max(20000, keys // 4) * 1000
    return size, now, size / 20000 * 1000, keys


def join(cluster: LocalCluster, work: str, name: str) -> tuple[float, float, bool]:
    """Seconds until a new replica applied the leader's commit index, its peak RSS in
    MiB, and whether its state digest then equals the others'."""
    print(f"  joining {name}", file=sys.stderr, flush=True)
    started = time.monotonic()
    joiner, url = cluster.join_replica(os.path.join(work, name), name)
    try:
        while True:
            try:
                view = httpx.get(url + "/health", timeout=5).json()
                if view["applied_index"] >= cluster.health(0)["commit_index"]:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        took = time.monotonic() - started
        with open(f"/proc/{joiner.pid}/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
        ours = httpx.get(url + "/health", timeout=5).json()
        theirs = cluster.health(0)
        same = (
            ours["state_digest_index"] != theirs["state_digest_index"]
            or ours["state_digest"] == theirs["state_digest"]
        )
        return took, peak, same
    finally:
        joiner.terminate()
        joiner.wait(timeout=60)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "remove",
                name,
                "--config",
                os.path.join(cluster.data, "replica-0", "replica.toml"),
            ],
            capture_output=True,
        )


def make_repositories(cluster: LocalCluster, count: int, have: int) -> None:
    """Repositories bench/r<N> holding one small image each (blobs mounted)."""
    manifest = push_image(cluster.url, "bench/r0", "1", "repos")
    document = json.loads(manifest.data)
    digests = [document["config"]["digest"], *(layer["digest"] for layer in document["layers"])]

    # A token per repository from a refresh token: no password hash per repository.
    refresh = httpx.get(
        cluster.url + "/auth/token",
        auth=("admin", cluster.admin_password),
        params={"offline_token": "true", "service": "quorum-registry"},
        timeout=30,
    ).json()["refresh_token"]
    # One client for all (each new client builds a TLS context: ~30 ms of CPU).
    shared = httpx.Client(base_url=cluster.url, timeout=30, limits=httpx.Limits(max_connections=16))

    def one(n: int) -> None:
        name = f"bench/r{n}"
        token = shared.post(
            "/auth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "service": "quorum-registry",
                "scope": f"repository:{name}:* repository:bench/r0:pull",
            },
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for digest in digests:
            shared.post(
                f"/v2/{name}/blobs/uploads/",
                headers=headers,
                params={"mount": digest, "from": "bench/r0"},
            ).raise_for_status()
        shared.put(
            f"/v2/{name}/manifests/1",
            content=manifest.data,
            headers={**headers, "Content-Type": OCI_MANIFEST},
        ).raise_for_status()

    with shared, concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(max(have, 1), count)))


def catalog_first_page(cluster: LocalCluster) -> float:
    with httpx.Client(base_url=cluster.url, auth=cluster.auth, timeout=30) as client:
        client.get("/v2/_catalog", params={"n": 100}).raise_for_status()
        times = []
        for _ in range(30):
            started = time.perf_counter()
            client.get("/v2/_catalog", params={"n": 100}).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="100000,300000", help="tag counts to measure at")
    parser.add_argument("--repos", default="3000,30000", help="repository counts for the catalog")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-large-")
    cluster = LocalCluster(os.path.join(work, "data"), replicas=3).start()
    rows = _Rows()
    try:
        manifest = json.loads(push_image(cluster.url, "bench/tags", "seed", "seed").data)
        manifest["annotations"] = {"bench": "@@N@@"}
        head, tail = json.dumps(manifest).split("@@N@@")
        for name, part in (("head", head), ("tail", tail)):
            with open(os.path.join(work, name), "w") as f:
                f.write(part)
        for n, level in enumerate(int(x) for x in args.levels.split(",")):
            load_tags(cluster, work, level - 20000, n * 2)
            before, start = written_bytes(cluster.pids), applied(cluster)
            load_tags(cluster, work, level, n * 2 + 1)
            per_1000 = (written_bytes(cluster.pids) - before) / (applied(cluster) - start) * 1000
            rows.append(
                (
                    f"disk writes per 1,000 tag writes at {level:,} tags (3 replicas, MiB)",
                    f"{per_1000 / (1 << 20):.2f}",
                )
            )
            size, now, before, keys = snapshot_cost(cluster)
            rows.append((f"snapshot at {level:,} tags: MiB ({keys:,} keys)", f"{size:.0f}"))
            rows.append(
                (f"snapshot MiB per 1,000 writes at {level:,} tags, spaced by keys/4", f"{now:.2f}")
            )
            rows.append(
                (
                    f"snapshot MiB per 1,000 writes at {level:,} tags, every 20,000 (before)",
                    f"{before:.2f}",
                )
            )
            took, peak, same = join(cluster, work, f"joiner-{n}")
            rows.append((f"join at {level:,} tags: seconds until caught up", f"{took:.1f}"))
            rows.append((f"join at {level:,} tags: joiner's peak memory (MiB)", f"{peak:.0f}"))
            rows.append((f"join at {level:,} tags: state digest equal", "yes" if same else "NO"))
        have = 0
        for count in (int(x) for x in args.repos.split(",") if x):
            print(f"  creating {count:,} repositories", file=sys.stderr, flush=True)
            make_repositories(cluster, count, have)
            have = count
            rows.append(
                (
                    f"catalog first page (n=100) at {count:,} repositories (ms)",
                    f"{catalog_first_page(cluster):.1f}",
                )
            )
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


class _Rows(list):  # type: ignore[type-arg]
    """Printed as they come: a long run keeps what it measured if stopped."""

    def append(self, row: tuple[str, str]) -> None:
        super().append(row)
        print(f"{row[0]:<72}  {row[1]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
