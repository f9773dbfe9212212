"""The scrub finds a flipped byte in a blob file and repairs it from a peer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout, sha256

pytestmark = pytest.mark.slow


def _blob_path(cluster: LocalCluster, index: int, digest: str) -> str:
    return os.path.join(
        cluster.data, f"replica-{index}", "storage", "blobs", "sha256", digest[7:9], digest[7:]
    )


def _wait_for_copies(cluster: LocalCluster, digests: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for i in range(len(cluster.urls)):
        for digest in digests:
            while not os.path.exists(_blob_path(cluster, i, digest)):
                assert time.monotonic() < deadline, f"replica {i} never got {digest}"
                time.sleep(0.05)


def _flip_a_byte(path: str, offset: int = 1000) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def _file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return sha256(f.read())


def _scrub(cluster: LocalCluster, index: int) -> subprocess.CompletedProcess[str]:
    config = os.path.join(cluster.data, f"replica-{index}", "replica.toml")
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "scrub", "--config", config],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_scheduled_scrub_repairs_a_flipped_byte(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QREG_SCRUB_INTERVAL_S", "1")
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        data = os.urandom(2_000_000)
        digest = sha256(data)
        r = httpx.post(
            f"{cluster.urls[0]}/v2/scrub/app/blobs/uploads/",
            auth=cluster.auth,
            params={"digest": digest},
            content=data,
            timeout=30,
        )
        assert r.status_code == 201
        _wait_for_copies(cluster, [digest])
        path = _blob_path(cluster, 1, digest)
        _flip_a_byte(path)
        deadline = time.monotonic() + 60
        while (
            "qreg_scrub_repaired_blobs_total 1.0"
            not in httpx.get(f"{cluster.urls[1]}/metrics").text
        ):
            assert time.monotonic() < deadline, "the scheduled scrub never repaired the blob"
            time.sleep(0.2)
        assert _file_digest(path) == digest
        metrics = httpx.get(f"{cluster.urls[1]}/metrics").text
        assert "qreg_scrub_corrupt_blobs_total 1.0" in metrics
        corrupt = os.listdir(os.path.join(cluster.data, "replica-1", "storage", "corrupt"))
        assert corrupt == [digest.replace(":", "-")]  # kept aside for a post-mortem
        with open(os.path.join(cluster.data, "replica-1", "replica.log")) as log:
            errors = [json.loads(line) for line in log if '"qreg.scrub"' in line]
        assert any(
            e["level"] == "error" and e.get("event") == "blob_corrupt" and e.get("digest") == digest
            for e in errors
        )
        r = httpx.get(
            f"{cluster.urls[1]}/v2/scrub/app/blobs/{digest}", auth=cluster.auth, timeout=30
        )
        assert r.content == data
    finally:
        cluster.stop()


def test_a_pull_before_the_scrub_fails_the_clients_check_and_qreg_scrub_fixes_it(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()  # daily schedule
    try:
        layout, manifest = image_layout(
            str(tmp_path / "layout"), "scrub", layers=2, layer_size=500_000
        )
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:latest",
            f"docker://{cluster.urls[0].removeprefix('http://')}/scrub/image:1",
        )
        layers = [layer["digest"] for layer in json.loads(manifest.data)["layers"]]
        _wait_for_copies(cluster, layers)
        _flip_a_byte(_blob_path(cluster, 2, layers[0]))
        source = f"docker://{cluster.urls[2].removeprefix('http://')}/scrub/image:1"
        # Before the scrub: the replica serves the bytes it has; the client's own
        # digest check refuses them, so nothing corrupt is ever used.
        with pytest.raises(AssertionError, match="(?i)digest"):
            skopeo("copy", "--src-tls-verify=false", source, f"dir:{tmp_path / 'bad'}")
        done = _scrub(cluster, 2)
        assert done.returncode == 0, done.stderr
        assert "1 corrupt, 1 repaired" in done.stdout
        skopeo("copy", "--src-tls-verify=false", source, f"dir:{tmp_path / 'good'}")
        files = dir_digests(str(tmp_path / "good"))
        for digest in layers:
            assert files[digest.split(":")[1]] == digest
        # Every copy rotten: a corrupt copy from a peer is refused, nothing is repaired.
        for i in range(3):
            _flip_a_byte(_blob_path(cluster, i, layers[1]), offset=10)
        done = _scrub(cluster, 0)
        assert done.returncode == 1
        assert "NOT REPAIRED" in done.stdout and layers[1] in done.stdout
        assert not os.path.exists(_blob_path(cluster, 0, layers[1]))
    finally:
        cluster.stop()
