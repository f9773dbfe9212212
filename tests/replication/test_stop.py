"""A replica told to stop (SIGTERM) finishes what is in flight, ends idle keep-alive
connections (its peers' included, over TLS) and exits promptly, logging no error."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tests.cluster import LocalCluster

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
