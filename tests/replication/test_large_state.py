"""Snapshots past the log: a replica that was away while the leader compacted its log
twice, and one that joins while writes go on, receive the snapshot out of band,
verified, and end with the same state digest as the others."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow

COMPACT_EVERY = 1000


def _tag_many(
    cluster: LocalCluster, url: str, prefix: str, count: int, stop: threading.Event | None = None
) -> int:
    manifest = push_image(url, "big/app", f"{prefix}-base", prefix)
    done = 0
    with httpx.Client(base_url=url, auth=cluster.auth, timeout=30) as client:
        for n in range(count):
            if stop is not None and stop.is_set():
                break
            r = client.put(
                f"/v2/big/app/manifests/{prefix}{n}",
                content=manifest.data,
                headers={"Content-Type": OCI_MANIFEST},
            )
            if r.status_code == 201:
                done += 1
    return done


def _converged(cluster: LocalCluster, indexes: list[int], timeout: float = 120) -> dict:
    """Wait until every replica stands at one applied index; their /health then."""
    deadline = time.monotonic() + timeout
    while True:
        views = {}
        try:
            views = {i: httpx.get(cluster.urls[i] + "/health", timeout=5).json() for i in indexes}
        except httpx.HTTPError:
            pass
        if (
            len(views) == len(indexes)
            and len({v["state_digest_index"] for v in views.values()}) == 1
        ):
            return views
        assert time.monotonic() < deadline, views
        time.sleep(0.3)


def _qreg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_a_replica_back_after_two_compactions_installs_a_verified_snapshot(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("QREG_RAFT_COMPACT_EVERY", str(COMPACT_EVERY))
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        leader = cluster.leader()
        away = (leader + 1) % 3
        cluster.sigkill(away)
        assert (
            _tag_many(cluster, cluster.urls[leader], "gone", 2 * COMPACT_EVERY + 500)
            == 2 * COMPACT_EVERY + 500
        )
        cluster.restart(away)
        views = _converged(cluster, [0, 1, 2])
        assert len({v["state_digest"] for v in views.values()}) == 1, views
        # The returning replica holds the accounts too: the admin's token works there.
        with cluster.client(away, timeout=30) as client:
            r = client.get("/v2/big/app/tags/list")
            assert r.status_code == 200
            assert len(r.json()["tags"]) == 2 * COMPACT_EVERY + 500 + 1
        with open(os.path.join(cluster.data, f"replica-{away}", "replica.log")) as f:
            log = f.read()
        assert "downloaded and verified" in log and "installing the snapshot" in log
        config = os.path.join(cluster.data, "replica-0", "replica.toml")
        assert _qreg("verify", "--config", config).returncode == 0
    finally:
        cluster.stop()


def test_a_replica_joining_under_load_ends_with_the_same_state(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QREG_RAFT_COMPACT_EVERY", str(COMPACT_EVERY))
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    joined: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    try:
        leader = cluster.leader()
        _tag_many(cluster, cluster.urls[leader], "before", COMPACT_EVERY + 200)
        writer = threading.Thread(
            target=_tag_many,
            args=(cluster, cluster.urls[leader], "during", 3 * COMPACT_EVERY, stop),
            daemon=True,
        )
        writer.start()
        joined, url = cluster.join_replica(f"{cluster.data}/replica-3", "replica-3")
        time.sleep(5)  # the join happens while the writer goes on
        stop.set()
        writer.join(timeout=60)
        cluster.urls.append(url)
        views = _converged(cluster, [0, 1, 2, 3])
        assert len({v["state_digest"] for v in views.values()}) == 1, views
        with cluster.client(3, timeout=30) as client:
            assert client.get("/v2/big/app/tags/list").status_code == 200
        assert all("diverged_at" not in v for v in views.values())
    finally:
        stop.set()
        if joined is not None:
            joined.terminate()
            joined.wait(timeout=30)
        cluster.stop()
