"""blobs.replication_factor: each blob on N replicas, not all; a lost copy is refilled."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.cluster import LocalCluster
from tests.images import sha256
from tests.replication.test_membership import qreg

pytestmark = pytest.mark.slow


def _holders(cluster: LocalCluster, digest: str, indexes: list[int]) -> set[int]:
    return {
        i
        for i in indexes
        if os.path.exists(
            os.path.join(
                cluster.data, f"replica-{i}", "storage", "blobs", "sha256", digest[7:9], digest[7:]
            )
        )
    }


def _settle(cluster: LocalCluster, digests: list[str], indexes: list[int], copies: int) -> None:
    deadline = time.monotonic() + 30
    while any(len(_holders(cluster, d, indexes)) != copies for d in digests):
        assert time.monotonic() < deadline, {d: _holders(cluster, d, indexes) for d in digests}
        time.sleep(0.1)
    time.sleep(3)  # a background sync round (2 s) adds no copy beyond the target
    assert all(len(_holders(cluster, d, indexes)) == copies for d in digests)


def test_three_copies_on_five_replicas(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QREG_BLOBS_REPLICATION_FACTOR", "3")
    cluster = LocalCluster(str(tmp_path / "data"), replicas=5).start()
    everyone = list(range(5))
    try:
        blobs = [os.urandom(300_000 + i) for i in range(6)]
        for i, data in enumerate(blobs):
            r = httpx.post(
                f"{cluster.urls[i % 5]}/v2/rf/app/blobs/uploads/",
                auth=cluster.auth,
                params={"digest": sha256(data)},
                content=data,
                timeout=30,
            )
            assert r.status_code == 201
        digests = [sha256(d) for d in blobs]
        _settle(cluster, digests, everyone, 3)

        # A replica without the blob serves it, and keeps no copy of its own.
        digest, data = digests[0], blobs[0]
        outsider = next(i for i in everyone if i not in _holders(cluster, digest, everyone))
        r = httpx.get(
            f"{cluster.urls[outsider]}/v2/rf/app/blobs/{digest}", auth=cluster.auth, timeout=30
        )
        assert r.status_code == 200 and r.content == data
        assert outsider not in _holders(cluster, digest, everyone)

        # A holder leaves the cluster: another replica takes its place.
        gone = max(_holders(cluster, digest, everyone) - {0})
        cluster.sigkill(gone)
        qreg(
            "remove",
            f"replica-{gone}",
            "--config",
            os.path.join(cluster.data, "replica-0", "replica.toml"),
        )
        remaining = [i for i in everyone if i != gone]
        _settle(cluster, digests, remaining, 3)
    finally:
        cluster.stop()
