"""A replica whose disk fills during replication: no half blob, the cluster keeps
accepting pushes, and the replica catches up once space returns.

The full disk is a small tmpfs mounted over one replica's storage directory
(needs root, as CI has); the rest of its data (Raft, metadata) stays on disk.
"""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest

from tests.cluster import LocalCluster, admin_auth
from tests.images import sha256

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root"),
]

MIB = 1 << 20


def _push(url: str, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/v2/full/app/blobs/uploads/",
        auth=admin_auth(),
        params={"digest": sha256(data)},
        content=data,
        timeout=60,
    )


def _verified_blobs(storage: str) -> list[str]:
    """Digests of the blob files under storage/, each checked against its name."""
    found = []
    for root, _, files in os.walk(os.path.join(storage, "blobs")):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                digest = sha256(f.read())
            assert digest == f"sha256:{name}", f"a half or wrong blob is visible: {name}"
            found.append(digest)
    return found


def _removed_soon(directory: str, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while os.listdir(directory):
        assert time.monotonic() < deadline, f"left in {directory}: {os.listdir(directory)}"
        time.sleep(0.1)


def test_a_full_disk_on_one_replica(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    storage = os.path.join(cluster.data, "replica-2", "storage")
    mounted = False
    try:
        cluster.sigkill(2)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", storage], check=True)
        mounted = True
        cluster.restart(2)
        cluster.leader(among=[0, 1, 2])
        blobs = [os.urandom(2 * MIB + 500_000) for _ in range(4)]  # 10 MiB, more than fits
        for data in blobs:
            assert _push(cluster.urls[0], data).status_code == 201  # replica 1 makes the majority
        assert _push(cluster.urls[1], os.urandom(MIB)).status_code == 201

        held = _verified_blobs(storage)
        assert len(held) < len(blobs)
        # Failed copies are removed: a push returns once a majority holds the blob, so
        # the last copy to the full replica may still be failing when it does.
        _removed_soon(os.path.join(storage, "tmp"))
        # The full replica still serves every blob: what it lacks streams from a holder.
        missing = next(d for d in blobs if sha256(d) not in held)
        r = httpx.get(
            f"{cluster.urls[2]}/v2/full/app/blobs/{sha256(missing)}", auth=cluster.auth, timeout=60
        )
        assert r.status_code == 200 and r.content == missing
        # A push that lands on it gets a clear error it can retry elsewhere.
        r = _push(cluster.urls[2], os.urandom(3 * MIB))
        assert r.status_code == 507
        assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
        _removed_soon(os.path.join(storage, "tmp"))

        subprocess.run(["mount", "-o", "remount,size=64m", storage], check=True)
        deadline = time.monotonic() + 60
        while not {sha256(d) for d in blobs} <= set(_verified_blobs(storage)):
            assert time.monotonic() < deadline, "the replica never caught up after space returned"
            time.sleep(0.2)
        while cluster.health(2)["blobs_missing"]:
            assert time.monotonic() < deadline, "the replica still counts blobs as missing"
            time.sleep(0.2)
        assert _push(cluster.urls[2], os.urandom(3 * MIB)).status_code == 201
    finally:
        cluster.stop()
        if mounted:
            subprocess.run(["umount", "-l", storage], check=False)
