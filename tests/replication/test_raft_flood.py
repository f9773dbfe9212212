"""An anonymous flood of two of three Raft ports for 20 s: writes keep succeeding."""

from __future__ import annotations

import threading
import time
import tomllib

import httpx
import pytest

from tests.cluster import LocalCluster
from tests.raft_flood import flood
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow

FLOOD_S = 20.0


def _raft_port(cluster: LocalCluster, index: int) -> int:
    with open(f"{cluster.data}/replica-{index}/replica.toml", "rb") as f:
        return int(tomllib.load(f)["raft"]["address"].rsplit(":", 1)[1])


def test_writes_go_on_while_two_raft_ports_are_flooded(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    stop = threading.Event()
    try:
        leader = cluster.leader()
        flooded = [(leader + 1) % 3, leader]  # the leader and one follower: a majority
        flooders = [
            threading.Thread(target=flood, args=(_raft_port(cluster, i), stop), daemon=True)
            for i in flooded
            for _ in range(3)
        ]
        for t in flooders:
            t.start()
        outcomes: list[tuple[float, bool]] = []
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < FLOOD_S:
            try:
                push_image(cluster.urls[n % 3], "flood/app", f"t{n}", f"s{n}", timeout=10)
                outcomes.append((time.monotonic() - started, True))
            except httpx.HTTPError:
                outcomes.append((time.monotonic() - started, False))
            n += 1
        stop.set()
        for t in flooders:
            t.join(timeout=5)
        failed = [at for at, ok in outcomes if not ok]
        assert not failed, f"{len(failed)} of {len(outcomes)} writes failed, at {failed[:5]}"
        # Writes succeeded throughout, not only before the flood took hold.
        assert len({int(at // 5) for at, ok in outcomes if ok}) >= 4, outcomes
    finally:
        stop.set()
        cluster.stop()
