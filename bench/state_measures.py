"""What bench/large_state_bench.py measures at each level of the state, and the
tokens and wrk runs it loads the cluster with."""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import lmdb

from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST

SERVICE = "quorum-registry"
BIG = "bench/big"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# wrk: GET tag "1" of each repository of the file in turn.
_GET_SCRIPT = """
local targets = {}
for line in io.lines("%(tokens)s") do
  local name, token = line:match("^(%%S+) (%%S+)$")
  targets[#targets + 1] = {"/v2/" .. name .. "/manifests/1", "Bearer " .. token}
end
local counter = 0
request = function()
  counter = counter + 1
  local target = targets[counter %% #targets + 1]
  return wrk.format("GET", target[1], {["Accept"] = "%(media_type)s",
                                       ["Authorization"] = target[2]})
end
"""


class Tokens:
    """Access tokens for many repositories from one refresh token (no password hash each)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.url = cluster.url
        self.refresh = httpx.get(
            cluster.url + "/auth/token",
            auth=("admin", cluster.admin_password),
            params={"offline_token": "true", "service": SERVICE},
            timeout=30,
        ).json()["refresh_token"]
        # One client for all (each new client builds a TLS context: ~30 ms of CPU).
        self.client = httpx.Client(
            base_url=cluster.url, timeout=30, limits=httpx.Limits(max_connections=16)
        )

    def one(self, scope: str) -> str:
        r = self.client.post(
            "/auth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.refresh,
                "service": SERVICE,
                "scope": scope,
            },
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def file(self, path: str, names: list[str]) -> str:
        """Write "NAME TOKEN" lines for `names` (push and pull) to `path`."""
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            tokens = list(pool.map(lambda n: self.one(f"repository:{n}:pull,push"), names))
        with open(path, "w") as f:
            f.writelines(f"{n} {t}\n" for n, t in zip(names, tokens, strict=True))
        return path


def wrk(url: str, script: str, seconds: float, connections: int = 16) -> tuple[int, float]:
    """(requests completed, requests/s); any non-2xx answer ends the benchmark."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw failed requests:\n{out}")
    done = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert done and rate, out
    return int(done.group(1)), float(rate.group(1))


# ---- measures ------------------------------------------------------------------------


def manifest_gets(cluster: LocalCluster, work: str, tokens: Tokens, names: list[str]) -> float:
    script = os.path.join(work, "get.lua")
    with open(script, "w") as f:
        f.write(
            _GET_SCRIPT
            % {
                "tokens": tokens.file(os.path.join(work, "get-tokens"), names),
                "media_type": OCI_MANIFEST,
            }
        )
    follower = (cluster.leader() + 1) % cluster.replicas
    wrk(cluster.urls[follower], script, 3, 64)  # warm
    return wrk(cluster.urls[follower], script, 10, 64)[1]


def median_ms(client: httpx.Client, path: str, params: dict[str, str | int]) -> float:
    client.get(path, params=params).raise_for_status()
    times = []
    for _ in range(20):
        started = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def every_tag(client: httpx.Client, path: str) -> list[str]:
    """Follow the Link header from page to page (pages without n hold 10,000 tags)."""
    tags: list[str] = []
    url: str | None = path
    while url is not None:
        r = client.get(url)
        r.raise_for_status()
        tags += r.json()["tags"]
        link = r.headers.get("Link")
        url = link.split(">", 1)[0].lstrip("<") if link else None
    return tags


def listings(cluster: LocalCluster, middle_repository: str) -> dict[str, float]:
    """Through the leader: a follower's read first asks the leader where the log is,
    and which replica replica 0 is changes from run to run."""
    url = cluster.urls[cluster.leader()]
    with httpx.Client(base_url=url, auth=cluster.auth, timeout=60) as client:
        tags = f"/v2/{BIG}/tags/list"
        every = every_tag(client, tags)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            every_tag(client, tags)
            times.append((time.perf_counter() - started) * 1000)
        return {
            f"tags in {BIG}": len(every),
            f"all tags of {BIG}, following its Link pages (ms)": statistics.median(times),
            "tag list n=100, first page (ms)": median_ms(client, tags, {"n": 100}),
            "tag list n=100, middle page (ms)": median_ms(
                client, tags, {"n": 100, "last": sorted(every)[len(every) // 2]}
            ),
            "catalog n=100, first page (ms)": median_ms(client, "/v2/_catalog", {"n": 100}),
            "catalog n=100, middle page (ms)": median_ms(
                client, "/v2/_catalog", {"n": 100, "last": middle_repository}
            ),
        }


def memory_and_disk(cluster: LocalCluster) -> dict[str, float]:
    rss, anon = [], []
    for pid in cluster.pids:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        rss.append(int(fields["VmRSS"].split()[0]) / 1024)
        anon.append(int(fields["RssAnon"].split()[0]) / 1024)
    data = os.path.join(cluster.data, "replica-0")
    path = os.path.join(data, "metadata")
    env = lmdb.open(path, readonly=True, lock=False, max_readers=4, map_size=1 << 36)
    try:
        info, stat = env.info(), env.stat()
        used = (info["last_pgno"] + 1) * stat["psize"]
        keys = stat["entries"]
    finally:
        env.close()
    return {
        "replica memory, largest RSS (MiB)": max(rss),
        "replica memory, largest RSS not file-backed (MiB)": max(anon),
        "Raft log entries held by the leader": cluster.health(cluster.leader())["log_entries"],
        "LMDB pages in use (MiB)": used / (1 << 20),
        "LMDB keys (main database)": keys,
    }


@contextmanager
def timed_writes(cluster: LocalCluster, tokens: Tokens, body: bytes) -> Iterator[list[float]]:
    """Sequential PUTs by tag to bench/big through the leader while the block runs: the
    list of their latencies in ms."""
    latencies: list[float] = []
    stop = threading.Event()
    token = tokens.one(f"repository:{BIG}:pull,push")
    url = cluster.urls[cluster.leader()]

    def writer() -> None:
        n = 0
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                n += 1
                started = time.perf_counter()
                client.put(
                    f"{url}/v2/{BIG}/manifests/probe-{time.time_ns()}-{n}",
                    content=body,
                    headers={"Content-Type": OCI_MANIFEST, "Authorization": f"Bearer {token}"},
                ).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        yield latencies
    finally:
        stop.set()
        thread.join()


def compaction(cluster: LocalCluster, tokens: Tokens, body: bytes) -> dict[str, float]:
    """A snapshot and log compaction on the leader, as a joining replica asks for one."""
    leader = cluster.leader()
    data = os.path.join(cluster.data, f"replica-{leader}")
    with timed_writes(cluster, tokens, body) as before:
        time.sleep(3)
    with timed_writes(cluster, tokens, body) as during:
        started = time.monotonic()
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                # Until the first byte: the snapshot is written (the download is not timed).
                "import sys; from cli.cluster_client import ClusterClient\n"
                "with ClusterClient(sys.argv[1], timeout=600) as c:\n"
                "    with c.stream('GET', '/api/v0/snapshot') as r:\n"
                "        r.raise_for_status(); next(r.iter_bytes(1))\n",
                os.path.join(data, "replica.toml"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        took = time.monotonic() - started
        if out.returncode:
            sys.exit(f"snapshot failed: {out.stderr}")
    return {
        "snapshot and compaction on the leader, asked to written (s)": took,
        "snapshot write alone (s)": cluster.health(leader)["snapshot_write_seconds"],
        "longest write while it ran (ms)": max(during),
        "longest write in 3 s before (ms)": max(before),
        "snapshot file (MiB)": os.stat(os.path.join(data, "raft", "snapshot")).st_size / (1 << 20),
    }


def restart_follower(cluster: LocalCluster) -> dict[str, float]:
    index = (cluster.leader() + 1) % cluster.replicas
    os.kill(cluster.pids[index], signal.SIGTERM)
    cluster.wait_stopped(index)
    others = [i for i in range(cluster.replicas) if i != index]
    target = cluster.health(cluster.leader(among=others))["commit_index"]
    started = time.monotonic()
    cluster.restart(index, timeout=600)
    serving = time.monotonic() - started
    while cluster.health(index)["applied_index"] < target:
        time.sleep(0.1)
    return {
        "follower restart: SIGTERM'd, started again, to serving (s)": serving,
        "follower restart: to caught up (s)": time.monotonic() - started,
    }


def join(cluster: LocalCluster, work: str, name: str) -> dict[str, float]:
    """A new replica joins (and is removed again afterwards)."""
    started = time.monotonic()
    joiner, url = cluster.join_replica(os.path.join(work, name), name)
    try:
        target = cluster.health(0)["commit_index"]
        while True:
            try:
                if httpx.get(url + "/health", timeout=5).json()["applied_index"] >= target:
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
        if not same:
            sys.exit("the joined replica's state digest differs")
        return {"join: to caught up (s)": took, "join: joiner's peak memory (MiB)": peak}
    finally:
        joiner.terminate()
        joiner.wait(timeout=60)
        config = os.path.join(cluster.data, "replica-0", "replica.toml")
        subprocess.run(
            [sys.executable, "-m", "cli.main", "remove", name, "--config", config],
            capture_output=True,
            cwd=ROOT,
        )
        shutil.rmtree(os.path.join(work, name), ignore_errors=True)


def backup(cluster: LocalCluster, work: str) -> dict[str, float]:
    path = os.path.join(work, "backup.qreg")
    passphrase = os.path.join(work, "passphrase")
    with open(passphrase, "w") as f:
        f.write("a long enough benchmark passphrase")
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "backup",
            path,
            "--config",
            os.path.join(cluster.data, "replica-0", "replica.toml"),
            "--passphrase-file",
            passphrase,
        ],
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    took = time.monotonic() - started
    size = os.stat(path).st_size / (1 << 20)
    os.unlink(path)
    return {"qreg backup (s)": took, "backup file (MiB)": size}
