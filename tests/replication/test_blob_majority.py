"""A blob push is acknowledged only once a majority holds it: losing the replica that
received it right after the acknowledgement loses no layer."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest

from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout, sha256
from tests.replication.test_maintenance import qreg

pytestmark = pytest.mark.slow


def test_kill_the_receiving_replica_right_after_the_push(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        layout, manifest = image_layout(
            str(tmp_path / "layout"), "majority", layers=3, layer_size=2_000_000
        )
        receiver = 0
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:latest",
            f"docker://{cluster.urls[receiver].removeprefix('http://')}/ha/app:1",
        )
        cluster.sigkill(receiver)  # right after the acknowledgement, before any pull
        survivors = [1, 2]
        cluster.leader(among=survivors, excluding=receiver)
        layers = [layer["digest"] for layer in json.loads(manifest.data)["layers"]]
        for i in survivors:
            out = str(tmp_path / f"out{i}")
            skopeo(
                "copy",
                "--src-tls-verify=false",
                f"docker://{cluster.urls[i].removeprefix('http://')}/ha/app:1",
                f"dir:{out}",
            )
            files = dir_digests(out)
            assert files["manifest.json"] == manifest.digest
            for digest in layers:
                assert files[digest.split(":")[1]] == digest
        # The metadata names a majority of holders for every layer.
        for digest in layers:
            blob = os.path.join(
                cluster.data, "replica-1", "storage", "blobs", "sha256", digest[7:9], digest[7:]
            )
            other = os.path.join(
                cluster.data, "replica-2", "storage", "blobs", "sha256", digest[7:9], digest[7:]
            )
            assert os.path.exists(blob) or os.path.exists(other)
        health = httpx.get(cluster.urls[1] + "/health").json()
        assert health["has_quorum"]
    finally:
        cluster.stop()


def test_a_replica_lacking_a_blob_streams_it_from_a_holder(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        data = os.urandom(3_000_000)
        digest = sha256(data)
        r = httpx.post(
            f"{cluster.urls[0]}/v2/fetch/app/blobs/uploads/",
            auth=cluster.auth,
            params={"digest": digest},
            content=data,
            timeout=30,
        )
        assert r.status_code == 201
        path = os.path.join(
            cluster.data, "replica-2", "storage", "blobs", "sha256", digest[7:9], digest[7:]
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(path):  # the background copy reaches every replica
            assert time.monotonic() < deadline, "replica 2 never got its copy"
            time.sleep(0.05)
        os.unlink(path)  # replica 2 lost its copy
        r = httpx.get(
            f"{cluster.urls[2]}/v2/fetch/app/blobs/{digest}", auth=cluster.auth, timeout=30
        )
        assert r.status_code == 200 and r.content == data
        with open(path, "rb") as f:  # fetched over gRPC, verified, and kept
            assert sha256(f.read()) == digest
        metrics = httpx.get(f"{cluster.urls[2]}/metrics").text
        assert 'route="blobs",status="200"' in metrics
    finally:
        cluster.stop()


def test_a_chunked_upload_alternating_between_replicas(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        data = os.urandom(3 * 1_000_000)
        chunks = [data[i : i + 1_000_000] for i in range(0, len(data), 1_000_000)]
        # As a round-robin load balancer would send them: each request to the next replica.
        urls = [cluster.urls[n % 3] for n in range(6)]
        r = httpx.post(f"{urls[0]}/v2/rr/app/blobs/uploads/", auth=cluster.auth)
        location = r.headers["Location"]
        offset = 0
        for n, chunk in enumerate(chunks, start=1):
            r = httpx.patch(
                urls[n] + location,
                content=chunk,
                timeout=30,
                auth=cluster.auth,
                headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
            )
            assert r.status_code == 202, r.text
            offset += len(chunk)
            location = r.headers["Location"]
            assert r.headers["Range"] == f"0-{offset - 1}"
        status = httpx.get(urls[4] + location, auth=cluster.auth)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{len(data) - 1}"
        r = httpx.put(
            urls[5] + location, auth=cluster.auth, params={"digest": sha256(data)}, timeout=30
        )
        assert r.status_code == 201, r.text
        for url in cluster.urls:
            assert (
                httpx.get(
                    f"{url}/v2/rr/app/blobs/{sha256(data)}", auth=cluster.auth, timeout=30
                ).content
                == data
            )
        # An unknown session is unknown everywhere, and never bounces between replicas.
        bogus = location.rsplit("/", 1)[0] + "/replica-1." + "0" * 32
        r = httpx.get(cluster.urls[0] + bogus, auth=cluster.auth)
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    finally:
        cluster.stop()


def test_a_returning_replica_syncs_every_blob_in_the_background(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        cluster.sigkill(2)
        cluster.leader(among=[0, 1], excluding=2)  # if replica 2 led, wait for the election
        blobs = [os.urandom(500_000 + n) for n in range(6)]
        for data in blobs:  # acknowledged by replicas 0 and 1: a majority
            r = httpx.post(
                f"{cluster.urls[0]}/v2/sync/app/blobs/uploads/",
                auth=cluster.auth,
                params={"digest": sha256(data)},
                content=data,
                timeout=30,
            )
            assert r.status_code == 201
        cluster.restart(2)
        deadline = time.monotonic() + 30
        while True:  # no pull asks for them: the sync brings them
            paths = [
                os.path.join(
                    cluster.data,
                    "replica-2",
                    "storage",
                    "blobs",
                    "sha256",
                    sha256(d)[7:9],
                    sha256(d)[7:],
                )
                for d in blobs
            ]
            health = httpx.get(cluster.urls[2] + "/health").json()
            if all(os.path.exists(p) for p in paths) and health["blobs_missing"] == 0:
                break
            assert time.monotonic() < deadline, f"not synced: {health}"
            time.sleep(0.2)
        for data, path in zip(blobs, paths, strict=False):
            with open(path, "rb") as f:
                assert f.read() == data
    finally:
        cluster.stop()


def test_a_joining_replica_converges_to_every_blob_and_serves_pulls_meanwhile(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    joined: subprocess.Popen[bytes] | None = None
    try:
        layout, manifest = image_layout(
            str(tmp_path / "layout"), "joiner", layers=4, layer_size=3_000_000
        )
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:latest",
            f"docker://{cluster.urls[0].removeprefix('http://')}/join/image:1",
        )
        extra = [os.urandom(2_000_000 + n) for n in range(10)]
        for data in extra:
            r = httpx.post(
                f"{cluster.urls[1]}/v2/join/blobs/blobs/uploads/",
                auth=cluster.auth,
                params={"digest": sha256(data)},
                content=data,
                timeout=30,
            )
            assert r.status_code == 201
        data_dir = f"{cluster.data}/replica-3"
        joined, url = cluster.join_replica(data_dir, "replica-3")
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/v2/", auth=cluster.auth, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the joined replica never answered"
            time.sleep(0.05)
        # A pull through the new replica right away, while it is still copying.
        out = str(tmp_path / "pulled")
        skopeo(
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            f"admin:{cluster.admin_password}",
            f"docker://{url.removeprefix('http://')}/join/image:1",
            f"dir:{out}",
        )
        files = dir_digests(out)
        layers = [layer["digest"] for layer in json.loads(manifest.data)["layers"]]
        for digest in layers:
            assert files[digest.split(":")[1]] == digest
        everything = layers + [sha256(d) for d in extra]
        while True:
            health = httpx.get(url + "/health", timeout=5).json()
            present = [
                os.path.exists(os.path.join(data_dir, "storage", "blobs", "sha256", d[7:9], d[7:]))
                for d in everything
            ]
            if all(present) and health["blobs_missing"] == 0:
                break
            assert time.monotonic() < deadline, f"not converged: {health}"
            time.sleep(0.2)
        status = qreg("status", "--url", url, "--config", f"{data_dir}/replica.toml")
        assert "replica-3" in status
    finally:
        if joined is not None:
            joined.terminate()
            joined.wait(timeout=30)
        cluster.stop()
