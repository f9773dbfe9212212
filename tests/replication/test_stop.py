"""A replica told to stop (SIGTERM) finishes what is in flight, ends idle keep-alive
connections (its peers' included, over TLS) and exits promptly, logging no error; a
leader hands its leadership over first, so pushes through the others never fail."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3, tls=True).start()
    try:
        leader = cluster.leader()
        for i in range(3):  # followers' reads ask the leader: peers hold connections to it
            with cluster.client(i) as client:
                for _ in range(5):
                    assert client.get("/v2/_catalog").status_code == 200
        idle = cluster.client(leader)
        idle.get("/v2/_catalog")
        uploading = cluster.client(leader, timeout=60)
        start = uploading.post("/v2/stop/app/blobs/uploads/")
        assert start.status_code == 202
        location = start.headers["Location"]
        sent = threading.Event()

        def body() -> Iterator[bytes]:
            yield b"x" * 65536
            sent.set()
            time.sleep(1.0)  # the stop arrives now
            yield b"y" * 65536

        result: dict[str, int] = {}
        patch = threading.Thread(
            target=lambda: result.update(
                status=uploading.patch(
                    location, content=body(), headers={"Content-Type": "application/octet-stream"}
                ).status_code
            )
        )
        patch.start()
        assert sent.wait(10)
        os.kill(cluster.pids[leader], signal.SIGTERM)
        patch.join(30)
        assert result.get("status") == 202, result
        assert _wait_exit(cluster.pids[leader], 60)
        idle.close()
        uploading.close()
        with open(tmp_path / "data" / f"replica-{leader}" / "replica.log") as f:
            records = [json.loads(line) for line in f if line.startswith("{")]
        stopping = [r for r in records if r["msg"] == "Shutting down"]
        assert stopping, "the replica did not log its stop"
        after = records[records.index(stopping[-1]) :]
        assert not [r for r in after if r["level"] in ("error", "critical")], after
        assert any(r["msg"].startswith("Finished server process") for r in after)
    finally:
        cluster.stop()


def test_a_stopping_leader_hands_over_and_no_push_through_the_others_fails(tmp_path) -> None:
    """SIGTERM on the leader under continuous pushes through both followers: the
    leader hands leadership to a caught-up follower before it exits (its log says
    so, and the new leader is one of them), and not one push through them fails."""
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        leader = cluster.leader()
        followers = [i for i in range(3) if i != leader]
        manifest = push_image(cluster.urls[followers[0]], "handover/app", "seed", "handover")
        stop = threading.Event()
        failures: list[str] = []
        pushed = [0]

        def push(index: int) -> None:
            with cluster.client(index) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    r = client.put(
                        f"/v2/handover/app/manifests/r{index}-{n}",
                        content=manifest.data,
                        headers={"Content-Type": OCI_MANIFEST},
                    )
                    if r.status_code == 201:
                        pushed[0] += 1
                    else:
                        failures.append(f"{r.status_code} {r.text[:200]}")

        writers = [threading.Thread(target=push, args=(i,)) for i in followers]
        for w in writers:
            w.start()
        time.sleep(1.0)
        os.kill(cluster.pids[leader], signal.SIGTERM)
        assert _wait_exit(cluster.pids[leader], 60)
        new = cluster.leader(among=followers, excluding=leader)
        before = pushed[0]
        time.sleep(1.0)  # and pushes go on under the new leader
        stop.set()
        for w in writers:
            w.join(30)
        assert not failures, failures[:5]
        assert pushed[0] > before
        assert new in followers
        with open(tmp_path / "data" / f"replica-{leader}" / "replica.log") as f:
            messages = [json.loads(line)["msg"] for line in f if line.startswith("{")]
        assert any(m.startswith("handed leadership over to") for m in messages)
    finally:
        cluster.stop()
