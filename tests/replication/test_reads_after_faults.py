"""A read never answers 404 for an acknowledged tag: a replica that cannot confirm it is
current waits, then answers 503 with Retry-After; what it holds it serves, marked."""

from __future__ import annotations

import signal
import time

import pytest

from tests.cluster import LocalCluster
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


def test_a_resumed_follower_serves_what_was_acknowledged_while_it_was_paused(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        leader = cluster.leader()
        follower = (leader + 1) % 3
        for round_ in range(3):
            cluster.signal(follower, signal.SIGSTOP)
            tags = [f"r{round_}-{n}" for n in range(20)]
            for tag in tags:
                push_image(cluster.urls[leader], "paused/app", tag, tag)
            cluster.signal(follower, signal.SIGCONT)
            with cluster.client(follower, timeout=30) as client:
                for tag in tags:  # at once: the follower's applied index is far behind
                    r = client.get(f"/v2/paused/app/manifests/{tag}", headers=ACCEPT)
                    assert r.status_code == 200, (tag, r.status_code, r.text[:200])
    finally:
        cluster.stop()


def test_a_replica_alone_answers_503_for_what_it_does_not_hold(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        leader = cluster.leader()
        push_image(cluster.urls[leader], "alone/app", "held", "held")
        lone = (leader + 1) % 3
        with cluster.client(lone, timeout=30) as client:
            # Get a token while the cluster still answers; then cut the others off.
            assert client.get("/v2/alone/app/manifests/held", headers=ACCEPT).status_code == 200
            others = [i for i in range(3) if i != lone]
            for i in others:
                cluster.signal(i, signal.SIGSTOP)
            try:
                started = time.monotonic()
                r = client.get("/v2/alone/app/manifests/never-pushed", headers=ACCEPT)
                assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1, r.text
                assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
                assert time.monotonic() - started < 15
                r = client.get("/v2/alone/app/manifests/held", headers=ACCEPT)
                assert r.status_code == 200 and r.headers["Qreg-Read"] == "unconfirmed"
                r = client.get("/v2/alone/app/tags/list")
                assert r.status_code == 200 and r.headers["Qreg-Read"] == "unconfirmed"
            finally:
                for i in others:
                    cluster.signal(i, signal.SIGCONT)
            cluster.leader()
            deadline = time.monotonic() + 30
            while True:  # with a leader again, every read is confirmed once more
                r = client.get("/v2/alone/app/manifests/never-pushed", headers=ACCEPT)
                if r.status_code == 404 and "Qreg-Read" not in r.headers:
                    break
                assert time.monotonic() < deadline, (r.status_code, dict(r.headers))
                time.sleep(0.2)
    finally:
        cluster.stop()
