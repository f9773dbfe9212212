"""Five replicas losing two, and a randomized run of kills, pauses and restarts of minorities."""

from __future__ import annotations

import concurrent.futures
import json
import random
import signal
import threading
import time

import httpx
import pytest

from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, image, sha256
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow


def wait_converged(cluster: LocalCluster, members: list[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            views = [cluster.health(i) for i in members]
            commit = max(v["commit_index"] for v in views)
            if all(v["applied_index"] >= commit for v in views) and views[0]["leader"]:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "replicas did not converge"
        time.sleep(0.2)


def test_five_replicas_tolerate_two_failures(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=5).start()
    try:
        leader = cluster.leader()
        doomed = [leader, (leader + 1) % 5]
        cluster.sigkill(doomed[0])
        cluster.sigkill(doomed[1])
        alive = [i for i in range(5) if i not in doomed]
        cluster.leader(among=alive, excluding=leader)
        written = {}
        for n, i in enumerate(alive * 3):
            deadline = time.monotonic() + 20
            while True:  # as clients do, retry a 503 (a further election may follow the kill)
                try:
                    written[f"t{n}"] = push_image(
                        cluster.urls[i], "five/app", f"t{n}", f"five{n}", timeout=30
                    ).digest
                    break
                except httpx.HTTPStatusError as e:
                    assert e.response.status_code == 503 and time.monotonic() < deadline, e
                    time.sleep(0.2)
        for i in doomed:
            cluster.restart(i)
        wait_converged(cluster, list(range(5)))
        for i in range(5):
            for tag, digest in written.items():
                r = httpx.head(
                    f"{cluster.urls[i]}/v2/five/app/manifests/{tag}",
                    auth=cluster.auth,
                    headers={"Accept": OCI_MANIFEST},
                )
                assert r.headers["Docker-Content-Digest"] == digest
    finally:
        cluster.stop()


def unique_manifest(blobs: tuple, tag: str) -> bytes:
    config, layer = blobs
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
            "annotations": {"tag": tag},
        }
    ).encode()


def test_randomized_faults_lose_no_acknowledged_write(tmp_path) -> None:
    rng = random.Random(int(time.time()))
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    acknowledged: dict[str, str] = {}
    attempted: dict[str, str] = {}
    stale_reads: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()
    config, layers, _ = image("faults", layers=1, layer_size=1000)
    blobs = (config, layers[0])
    for blob in blobs:
        httpx.post(
            f"{cluster.urls[0]}/v2/faults/app/blobs/uploads/",
            auth=cluster.auth,
            params={"digest": blob.digest},
            content=blob.data,
        ).raise_for_status()

    def writer(k: int) -> None:
        with httpx.Client(timeout=10, auth=cluster.auth) as client:
            n = 0
            while not stop.is_set():
                tag = f"w{k}-{n}"
                n += 1
                body = unique_manifest(blobs, tag)
                with lock:
                    attempted[tag] = sha256(body)
                url = cluster.urls[rng.randrange(3)]
                try:
                    r = client.put(
                        f"{url}/v2/faults/app/manifests/{tag}",
                        content=body,
                        headers={"Content-Type": OCI_MANIFEST},
                    )
                except httpx.HTTPError:
                    continue
                if r.status_code == 201:
                    with lock:
                        acknowledged[tag] = sha256(body)
                    # Right away, through another replica: never "unknown" (a 503 that
                    # says "retry" is fine, and so is a replica that is down or paused).
                    other = cluster.urls[(cluster.urls.index(url) + rng.randrange(1, 3)) % 3]
                    try:
                        read = client.get(
                            f"{other}/v2/faults/app/manifests/{tag}",
                            headers={"Accept": OCI_MANIFEST},
                            timeout=5,
                        )
                        if read.status_code == 404:
                            with lock:
                                stale_reads.append(tag)
                    except httpx.HTTPError:
                        pass
                time.sleep(0.03)  # a few thousand tags are plenty; the check reads each one

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    faults = []
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            victim = rng.randrange(3)
            if rng.random() < 0.5:
                faults.append(f"kill {victim}")
                cluster.sigkill(victim)
                time.sleep(rng.uniform(0.5, 3.0))
                cluster.restart(victim)
            else:
                faults.append(f"pause {victim}")
                cluster.signal(victim, signal.SIGSTOP)
                time.sleep(rng.uniform(0.5, 3.0))
                cluster.signal(victim, signal.SIGCONT)
            time.sleep(rng.uniform(0.5, 2.0))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    try:
        wait_converged(cluster, [0, 1, 2])
        assert len(acknowledged) > 100, faults
        assert not stale_reads, (len(stale_reads), stale_reads[:5], faults)
        views = [cluster.health(i) for i in range(3)]
        assert len({v["state_digest"] for v in views}) == 1, (views, faults)
        assert all("diverged_at" not in v for v in views)
        for i in range(3):
            with cluster.client(i, limits=httpx.Limits(max_connections=16)) as client:
                tags = client.get("/v2/faults/app/tags/list").json()["tags"]
                assert set(acknowledged) <= set(tags), (i, faults)

                def pointed_at(tag: str) -> str:
                    r = client.head(
                        f"/v2/faults/app/manifests/{tag}", headers={"Accept": OCI_MANIFEST}
                    )
                    return r.headers["Docker-Content-Digest"]

                with concurrent.futures.ThreadPoolExecutor(16) as pool:
                    digests = dict(zip(tags, pool.map(pointed_at, tags), strict=False))
                # Acknowledged or not, a tag points at what was written for it.
                wrong = {t: d for t, d in digests.items() if d != attempted[t]}
                assert not wrong, (i, list(wrong.items())[:5], faults)
    finally:
        cluster.stop()
