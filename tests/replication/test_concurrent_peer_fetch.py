"""Many clients pull a large blob that the replica they ask does not hold, while someone
pushes through it: every pull and the push complete (the fetch pumps once took every
worker thread that their own consumers needed)."""

from __future__ import annotations

import concurrent.futures
import os

import httpx
import pytest

from tests.cluster import LocalCluster
from tests.images import sha256
from tests.replication.test_replication_factor import _holders, _settle

pytestmark = pytest.mark.slow

PULLS = 32


def test_many_pulls_of_an_absent_blob_and_a_push_meanwhile(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QREG_BLOBS_REPLICATION_FACTOR", "2")
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    everyone = [0, 1, 2]
    try:
        data = os.urandom(32 << 20)
        digest = sha256(data)
        r = httpx.post(
            f"{cluster.urls[0]}/v2/big/app/blobs/uploads/",
            auth=cluster.auth,
            params={"digest": digest},
            content=data,
            timeout=60,
        )
        assert r.status_code == 201
        _settle(cluster, [digest], everyone, 2)
        outsider = next(i for i in everyone if i not in _holders(cluster, digest, everyone))
        url = cluster.urls[outsider]
        auth = cluster.auth

        def pull(_: int) -> str:
            with httpx.Client(auth=auth, timeout=60) as client:
                answer = client.get(f"{url}/v2/big/app/blobs/{digest}")
                assert answer.status_code == 200, answer.text[:200]
                return sha256(answer.content)

        def push() -> int:
            small = os.urandom(1000)
            with httpx.Client(auth=auth, timeout=60) as client:
                return client.post(
                    f"{url}/v2/big/other/blobs/uploads/",
                    params={"digest": sha256(small)},
                    content=small,
                ).status_code

        with concurrent.futures.ThreadPoolExecutor(PULLS + 1) as pool:
            pulls = [pool.submit(pull, i) for i in range(PULLS)]
            pushed = pool.submit(push)
            assert pushed.result(timeout=90) == 201
            assert [p.result(timeout=90) for p in pulls] == [digest] * PULLS
    finally:
        cluster.stop()
