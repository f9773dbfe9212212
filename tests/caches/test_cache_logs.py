"""A cache's log lines reach the cluster's Logs page: the replica asks with a grant it
signs for "_logs"; the cache answers no one else."""

from __future__ import annotations

import httpx
import pytest

from tests.cluster import LocalCluster

pytestmark = pytest.mark.slow


def test_the_logs_gather_every_replica_and_cache(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=1, caches=("eu",), tls=True).start()
    try:
        with cluster.client() as admin:
            r = admin.get("/api/v0/logs", params={"level": "debug"})
            assert r.status_code == 200, r.text
            sources = {line["replica"] for line in r.json()["lines"]}
            assert {"replica-0", "cache:eu"} <= sources, r.json()["errors"]
            cursor = r.json()["cursor"]
            assert "cache:eu:" in cursor
            only = admin.get("/api/v0/logs", params={"replica": "cache:eu"}).json()
            assert {line["replica"] for line in only["lines"]} <= {"cache:eu"}
        cache = cluster.caches["eu"]
        verify = cluster.verify
        assert httpx.get(cache + "/_internal/logs", verify=verify).status_code == 401
        forged = {"X-Qreg-Grant": "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"}
        assert (
            httpx.get(cache + "/_internal/logs", headers=forged, verify=verify).status_code == 401
        )
        assert httpx.get(cluster.url + "/api/v0/logs", verify=verify).status_code == 401
    finally:
        cluster.stop()
