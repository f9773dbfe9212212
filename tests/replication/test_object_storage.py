"""Three replicas sharing one bucket on a real object store (SeaweedFS): skopeo pushes
and pulls through different replicas, a replica killed, the object store killed and
brought back, redirects to presigned URLs, and garbage collection deleting objects."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.caches.common import PASSWORD, add_users, metric
from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout, layer, sha256
from tests.object_store import SeaweedFS, s3_client
from tests.replication.test_storage_migration import qreg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(str(tmp_path_factory.mktemp("seaweedfs"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(store: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    env = {**store.replica_env(), "QREG_GC_GRACE_S": "0"}
    cluster = LocalCluster(
        str(tmp_path_factory.mktemp("data")), replicas=3, env=env, caches=("eu",)
    ).start()
    yield cluster
    cluster.stop()


def objects(store: SeaweedFS, under: str) -> dict[str, int]:
    client = s3_client(store.settings())
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="qreg-blobs", Prefix=under):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["Size"]
    return found


def blob_key(digest: str) -> str:
    hexpart = digest.split(":")[1]
    return f"blobs/sha256/{hexpart[:2]}/{hexpart}"


def local_blob_files(cluster: LocalCluster) -> list[str]:
    found = []
    for i in range(3):
        for root, _, files in os.walk(os.path.join(cluster.data, f"replica-{i}", "storage")):
            found += [os.path.join(root, f) for f in files]
    return found


def host(cluster: LocalCluster, index: int) -> str:
    return cluster.urls[index].split("://", 1)[1]


def test_skopeo_push_and_pull_through_different_replicas(
    cluster: LocalCluster, store: SeaweedFS, tmp_path
) -> None:
    # 12 MiB layers: several parts each, uploaded as skopeo sends them (POST, PATCH, PUT).
    layout, manifest = image_layout(str(tmp_path / "layout"), "s3-push", layer_size=12 << 20)
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{layout}:latest",
        f"docker://{host(cluster, 0)}/s3/app:1",
    )
    described = json.loads(manifest.data)["layers"]
    layers = [entry["digest"] for entry in described]
    held = objects(store, "blobs/")
    for entry in described:
        assert held[blob_key(entry["digest"])] == entry["size"] > 12 << 20
    assert objects(store, "uploads/") == {}  # sessions' objects went once copied in place
    assert local_blob_files(cluster) == []  # no replica keeps blob bytes of its own
    for i in (1, 2):
        out = str(tmp_path / f"out{i}")
        skopeo(
            "copy", "--src-tls-verify=false", f"docker://{host(cluster, i)}/s3/app:1", f"dir:{out}"
        )
        files = dir_digests(out)
        assert files["manifest.json"] == manifest.digest
        for digest in layers:
            assert files[digest.split(":")[1]] == digest
    with cluster.client(2) as client:  # ranges are read from the store too
        r = client.get(f"/v2/s3/app/blobs/{layers[0]}", headers={"Range": "bytes=9000000-9000009"})
        assert r.status_code == 206 and len(r.content) == 10
        assert r.headers["content-range"] == f"bytes 9000000-9000009/{described[0]['size']}"
        health = client.get("/health").json()
        assert health["blob_store"] == {"backend": "s3", "reachable": True}


def test_a_killed_replica_loses_nothing_and_needs_no_copying(
    cluster: LocalCluster, store: SeaweedFS, tmp_path
) -> None:
    doomed = (cluster.leader() + 1) % 3
    cluster.sigkill(doomed)
    alive = [i for i in range(3) if i != doomed]
    layout, manifest = image_layout(str(tmp_path / "layout"), "s3-kill", layer_size=3 << 20)
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{layout}:latest",
        f"docker://{host(cluster, alive[0])}/s3/kill:1",
    )
    cluster.restart(doomed)
    out = str(tmp_path / "out")
    # Served at once by the replica that was down: the bytes are in the bucket.
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{host(cluster, doomed)}/s3/kill:1",
        f"dir:{out}",
    )
    assert dir_digests(out)["manifest.json"] == manifest.digest
    assert cluster.health(doomed)["blobs_missing"] == 0


def test_the_object_store_down_fails_pushes_cleanly_and_they_work_when_it_returns(
    cluster: LocalCluster, store: SeaweedFS
) -> None:
    blob = layer("outage", 1 << 20)
    store.stop()
    try:
        with cluster.client(0, timeout=60) as client:
            r = client.post(
                "/v2/s3/outage/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
            )
            assert r.status_code == 503, r.text
            assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
            assert "object store" in r.json()["errors"][0]["message"]
            # Health says so within a check or two, and the replica stops taking writes.
            deadline = time.monotonic() + 30
            while (health := client.get("/health")).json()["blob_store"]["reachable"]:
                assert time.monotonic() < deadline, "health never saw the store down"
                time.sleep(0.5)
            assert health.status_code == 503
            assert client.head(f"/v2/s3/outage/blobs/{blob.digest}").status_code == 404
            assert "qreg_blob_store_reachable 0.0" in client.get("/metrics").text
        config = os.path.join(cluster.data, "replica-0", "replica.toml")
        status = qreg({}, "status", "--config", config)
        assert "object store unreachable" in status.stdout, status.stdout + status.stderr
    finally:
        store.start()
    with cluster.client(0, timeout=60) as client:
        deadline = time.monotonic() + 30
        while not client.get("/health").json()["blob_store"]["reachable"]:
            assert time.monotonic() < deadline, "health never saw the store back"
            time.sleep(0.5)
        r = client.post(
            "/v2/s3/outage/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
        )
        assert r.status_code == 201, r.text
        assert client.get(f"/v2/s3/outage/blobs/{blob.digest}").content == blob.data
    assert objects(store, "uploads/") == {}


def test_redirects_send_clients_to_presigned_urls(
    cluster: LocalCluster, store: SeaweedFS, tmp_path
) -> None:
    layout, manifest = image_layout(str(tmp_path / "layout"), "s3-redirect", layer_size=2 << 20)
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{layout}:latest",
        f"docker://{host(cluster, 0)}/s3/redirect:1",
    )
    cluster.env["QREG_BLOBS_REDIRECT"] = "true"
    try:
        cluster.signal(2, signal.SIGTERM)
        cluster.wait_stopped(2)
        cluster.restart(2)
    finally:
        del cluster.env["QREG_BLOBS_REDIRECT"]
    digest = json.loads(manifest.data)["layers"][0]["digest"]
    with cluster.client(2) as client:
        # A client not known to follow redirects (curl without -L, a cache) gets bytes.
        assert sha256(client.get(f"/v2/s3/redirect/blobs/{digest}").content) == digest
        docker = {"User-Agent": "docker/27.5.1 go/go1.22.12 os/linux arch/amd64"}
        r = client.get(f"/v2/s3/redirect/blobs/{digest}", headers=docker)
        assert r.status_code == 307
        location = r.headers["location"]
        assert location.startswith(store.endpoint) and "X-Amz-Signature=" in location
        assert sha256(httpx.get(location).content) == digest
        ranged = httpx.get(location, headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100
    out = str(tmp_path / "out")
    skopeo(
        "copy", "--src-tls-verify=false", f"docker://{host(cluster, 2)}/s3/redirect:1", f"dir:{out}"
    )
    assert dir_digests(out)[digest.split(":")[1]] == digest


def test_garbage_collection_deletes_each_object(cluster: LocalCluster, store: SeaweedFS) -> None:
    from tests.replication.test_three_replicas import push_image

    manifest = push_image(
        cluster.urls[0], "s3/gc", "doomed", "s3-gc", verify=cluster.verify, auth=cluster.auth
    )
    with cluster.client(0) as client:
        layers = [
            e["digest"]
            for e in json.loads(client.get("/v2/s3/gc/manifests/doomed").content)["layers"]
        ]
        assert blob_key(layers[0]) in objects(store, "blobs/")
        assert client.delete(f"/v2/s3/gc/manifests/{manifest.digest}").status_code == 202
        time.sleep(4)  # older than the sweep's allowance for the store's clock
        run = client.post("/api/v0/gc/runs", json={}, timeout=60)
        assert run.status_code == 200, run.text
    deadline = time.monotonic() + 30
    while blob_key(layers[0]) in objects(store, "blobs/"):
        assert time.monotonic() < deadline, "the collected layer's object is still there"
        time.sleep(0.5)


def test_a_cache_pulls_through_replicas_on_object_storage(
    cluster: LocalCluster, store: SeaweedFS, tmp_path
) -> None:
    """Caches work unchanged: a user of the cache is redirected to it, and the cache's
    own fetch is served bytes by the replica (never sent on to the bucket)."""
    add_users(cluster, {"ahab": "read-only"})
    with cluster.client() as admin:
        r = admin.post("/api/v0/content_caches/eu/users", json={"users": ["ahab"]})
        assert r.status_code == 200, r.text
    layout, manifest = image_layout(str(tmp_path / "layout"), "s3-cache", layer_size=1 << 20)
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest",
           f"docker://{host(cluster, 0)}/s3/cached:1")  # fmt: skip
    for i in range(3):  # through every replica, replica 2 with redirects to the bucket on
        out = str(tmp_path / f"out{i}")
        skopeo("copy", "--src-tls-verify=false", "--src-creds", f"ahab:{PASSWORD}",
               f"docker://{host(cluster, i)}/s3/cached:1", f"dir:{out}")  # fmt: skip
        assert dir_digests(out)["manifest.json"] == manifest.digest
    cache = cluster.caches["eu"]
    blobs = 1 + len(json.loads(manifest.data)["layers"])  # the config and the layers
    # Each fetched from the cluster once, then served from the cache's disk.
    assert metric(cache, "qreg_cache_upstream_fetches_total", cluster.verify) == blobs
    assert metric(cache, "qreg_cache_hits_total", cluster.verify) >= 2 * blobs


def test_an_upload_goes_on_through_another_replica_when_its_own_dies(
    cluster: LocalCluster, store: SeaweedFS
) -> None:
    """Chunked upload: the first PATCH lands on a replica that is then killed; the
    next goes to another, which carries the session on from the bucket."""
    data = os.urandom(20 << 20)
    digest = sha256(data)
    owner = (cluster.leader() + 1) % 3
    other = (owner + 1) % 3
    with cluster.client(owner, timeout=60) as client:
        r = client.post("/v2/s3/resumed/blobs/uploads/")
        assert r.status_code == 202
        location = r.headers["location"]
        half = 12 << 20
        r = client.patch(location, content=data[:half],
                         headers={"Content-Range": f"0-{half - 1}"})  # fmt: skip
        assert r.status_code == 202, r.text
    cluster.sigkill(owner)
    try:
        with cluster.client(other, timeout=60) as client:
            r = client.get(location)  # where does it stand? asked of a replica that never saw it
            assert r.status_code == 204 and r.headers["range"] == f"0-{half - 1}"
            r = client.patch(location, content=data[half:],
                             headers={"Content-Range": f"{half}-{len(data) - 1}"})  # fmt: skip
            assert r.status_code == 202, r.text
            moved = r.headers["location"]
            assert cluster_id(cluster, other) in moved  # the session now names this replica
            r = client.put(moved, params={"digest": digest})
            assert r.status_code == 201, r.text
        with cluster.client((owner + 2) % 3) as client:
            assert sha256(client.get(f"/v2/s3/resumed/blobs/{digest}").content) == digest
    finally:
        cluster.restart(owner)
    assert objects(store, "uploads/") == {}


def cluster_id(cluster: LocalCluster, index: int) -> str:
    return str(cluster.health(index)["replica_id"])


def test_scrub_finds_an_object_rotten_in_the_bucket(
    cluster: LocalCluster, store: SeaweedFS
) -> None:
    """The bucket is the only copy: a scrub reports a corrupt object (no peer can
    repair it), and pushing the blob again puts it right."""
    from tests.replication.test_storage_migration import qreg

    blob = layer("rotten", 1 << 20)
    with cluster.client(0) as client:
        r = client.post(
            "/v2/s3/rotten/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
        )
        assert r.status_code == 201, r.text
    bucket = s3_client(store.settings())
    bucket.put_object(Bucket="qreg-blobs", Key=blob_key(blob.digest), Body=b"x" + blob.data[1:])
    config = os.path.join(cluster.data, "replica-1", "replica.toml")
    scrub = qreg({}, "scrub", "--config", config)
    assert scrub.returncode == 1, scrub.stdout + scrub.stderr
    assert f"{blob.digest}  NOT REPAIRED" in scrub.stdout
    with cluster.client(2) as client:
        r = client.post(
            "/v2/s3/rotten/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
        )
        assert r.status_code == 201, r.text
    scrub = qreg({}, "scrub", "--config", config)
    assert scrub.returncode == 0 and ": 0 corrupt" in scrub.stdout, scrub.stdout
