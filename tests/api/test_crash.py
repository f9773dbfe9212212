"""SIGKILL a replica in the middle of an upload and right after a manifest push is acknowledged."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import httpx
import pytest

from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, image, sha256

pytestmark = pytest.mark.slow


def _stream_forever(
    url: str, digest: str, started: threading.Event, headers: dict[str, str]
) -> None:
    """A monolithic upload whose body never ends: the replica dies while it reads it."""

    def body():
        yield os.urandom(8 << 20)
        started.set()
        while True:
            time.sleep(0.05)
            yield os.urandom(1 << 16)

    try:
        httpx.post(url, params={"digest": digest}, content=body(), headers=headers, timeout=30)
    except httpx.HTTPError:
        pass


def test_kill_during_upload_and_after_manifest_ack(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data")).start()
    name = "crash/app"
    client = cluster.client()
    # A chunked upload with one chunk received, to resume after the restart.
    resumable = os.urandom(3 << 20)
    location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=resumable[: 1 << 20]).status_code == 202
    # An upload in flight when the replica dies.
    partial_digest = sha256(b"never finished")
    started = threading.Event()
    uploader = threading.Thread(
        target=_stream_forever,
        daemon=True,
        args=(
            f"{cluster.url}/v2/{name}/blobs/uploads/",
            partial_digest,
            started,
            cluster.auth.bearer(cluster.url, name),
        ),
    )
    uploader.start()
    assert started.wait(30)
    # An image whose manifest is acknowledged just before the kill.
    config, layers, manifest = image("crash", layer_size=1 << 20)
    for blob in [config, *layers]:
        r = client.post(
            f"/v2/{name}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
        )
        assert r.status_code == 201
    r = client.put(
        f"/v2/{name}/manifests/v1", content=manifest.data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201
    cluster.kill_all()
    client.close()
    uploader.join(timeout=30)

    cluster.start()
    with cluster.client() as client:
        r = client.get(f"/v2/{name}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.content == manifest.data
        for blob in [config, *layers]:
            r = client.get(f"/v2/{name}/blobs/{blob.digest}")
            assert r.status_code == 200 and sha256(r.content) == blob.digest
        assert client.head(f"/v2/{name}/blobs/{partial_digest}").status_code == 404
        # The interrupted chunked upload resumes where it stood.
        status = client.get(location)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{(1 << 20) - 1}"
        assert client.patch(location, content=resumable[1 << 20 :]).status_code == 202
        r = client.put(location, params={"digest": sha256(resumable)})
        assert r.status_code == 201
        assert client.get(f"/v2/{name}/blobs/{sha256(resumable)}").content == resumable
    cluster.stop()
    # No file under blobs/ holds anything but the bytes its name promises.
    blobs = tmp_path / "data" / "replica-0" / "storage" / "blobs"
    for path in blobs.rglob("*"):
        if path.is_file():
            assert (
                "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == f"sha256:{path.name}"
            )
