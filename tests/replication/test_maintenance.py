"""Emergency repair after losing two of three replicas; backup, then restore into a new cluster."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster, free_port_block, join_ports
from tests.images import OCI_MANIFEST, image_layout
from tests.registry_auth import TokenAuth
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow


def qreg(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def host(url: str) -> str:
    return url.removeprefix("http://")


def test_emergency_repair_after_losing_two_of_three(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        layout, manifest = image_layout(str(tmp_path / "layout"), "repair", layer_size=500_000)
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:latest",
            f"docker://{host(cluster.urls[0])}/keep/app:1",
        )
        tags = {
            f"t{n}": push_image(cluster.urls[n % 3], "keep/many", f"t{n}", f"r{n}").digest
            for n in range(20)
        }
        survivor = 2
        # The survivor fetches what it lacks now; the blob service (issue 4) makes this automatic.
        skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{host(cluster.urls[survivor])}/keep/app:1",
            f"dir:{tmp_path / 'warm'}",
        )
        for tag in tags:
            manifest_json = httpx.get(
                f"{cluster.urls[survivor]}/v2/keep/many/manifests/{tag}",
                auth=cluster.auth,
                headers={"Accept": OCI_MANIFEST},
            ).json()
            for layer in manifest_json["layers"] + [manifest_json["config"]]:
                httpx.get(
                    f"{cluster.urls[survivor]}/v2/keep/many/blobs/{layer['digest']}",
                    auth=cluster.auth,
                )
        term_before = max(httpx.get(u + "/health").json()["term"] for u in cluster.urls)
        cluster.kill_all()
        out = qreg(
            "emergency-repair", "--replica-id", f"replica-{survivor}", "--data", cluster.data
        )
        assert "cluster of one" in out and "replica-0, replica-1" in out and "qreg join" in out
        cluster.restart(survivor)
        url = cluster.urls[survivor]
        health = httpx.get(url + "/health").json()
        assert health["role"] == "leader" and health["has_quorum"] is True
        assert health["term"] > term_before  # terms never go back
        listed = httpx.get(url + "/api/v0/replicas", auth=cluster.auth).json()["replicas"]
        assert [r["replica_id"] for r in listed] == [f"replica-{survivor}"]
        pulled = tmp_path / "pulled"
        skopeo(
            "copy", "--src-tls-verify=false", f"docker://{host(url)}/keep/app:1", f"dir:{pulled}"
        )
        assert dir_digests(str(pulled))["manifest.json"] == manifest.digest
        for tag, digest in tags.items():
            r = httpx.head(
                f"{url}/v2/keep/many/manifests/{tag}",
                auth=cluster.auth,
                headers={"Accept": OCI_MANIFEST},
            )
            assert r.headers["Docker-Content-Digest"] == digest
        push_image(url, "keep/many", "after-repair", "after")
        # A replacement may take a lost replica's id (its old data directory is gone).
        token = qreg(
            "join-token", "--config", f"{cluster.data}/replica-{survivor}/replica.toml"
        ).strip()
        shutil.rmtree(f"{cluster.data}/replica-0")
        joined = qreg(
            "join",
            "--existing",
            url,
            "--token",
            token,
            "--replica-id",
            "replica-0",
            "--data",
            str(tmp_path / "replacement"),
            "--port",
            str(free_port_block()),
            "--no-start",
            "--insecure-http",
            *join_ports(),
        )
        assert "not yet a member" in joined
    finally:
        cluster.stop()


def test_backup_then_restore_into_a_new_cluster(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QREG_BACKUP_PASSPHRASE", "the passphrase of this test")
    old = LocalCluster(str(tmp_path / "old"), replicas=3).start()
    try:
        tags = {
            f"t{n}": push_image(old.urls[n % 3], "backup/app", f"t{n}", f"b{n}").digest
            for n in range(15)
        }
        backup = str(tmp_path / "meta.qreg")
        blobs = str(tmp_path / "blobs")
        out = qreg(
            "backup",
            backup,
            "--config",
            f"{old.data}/replica-1/replica.toml",
            "--with-blobs",
            blobs,
        )
        assert "wrote" in out and "downloaded now" in out
        again = qreg(
            "backup",
            str(tmp_path / "again.qreg"),
            "--config",
            f"{old.data}/replica-1/replica.toml",
            "--with-blobs",
            blobs,
        )
        assert "0 downloaded now" in again  # resumable: nothing left to fetch
        push_image(old.urls[0], "backup/app", "not-in-backup", "late")
    finally:
        old.stop()
    wrong = subprocess.run(
        [sys.executable, "-m", "cli.main", "restore", backup, "--data", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QREG_BACKUP_PASSPHRASE": "not the passphrase"},
    )
    assert wrong.returncode != 0 and "wrong passphrase" in wrong.stderr
    new = LocalCluster(str(tmp_path / "new"), replicas=3)
    out = qreg("restore", backup, "--data", new.data, "--replicas", "3", "--port", str(new.port))
    assert "no blobs restored" in out and "kept the backup" in out
    with open(f"{old.data}/ca.crt") as a, open(f"{new.data}/ca.crt") as b:
        assert a.read() == b.read()  # clients keep trusting the restored cluster
    new.start()
    try:
        layers = set()
        for i in range(3):
            listed = httpx.get(f"{new.urls[i]}/v2/backup/app/tags/list", auth=new.auth).json()[
                "tags"
            ]
            assert sorted(listed) == sorted(tags)
            for tag, digest in tags.items():
                r = httpx.get(
                    f"{new.urls[i]}/v2/backup/app/manifests/{tag}",
                    auth=new.auth,
                    headers={"Accept": OCI_MANIFEST},
                )
                assert r.headers["Docker-Content-Digest"] == digest
                layers |= {layer["digest"] for layer in r.json()["layers"]}
        # Metadata only: every blob is reported held nowhere, not "0 to sync".
        _wait(
            lambda: all(
                httpx.get(u + "/health").json()["blobs_unavailable"] >= len(layers)
                for u in new.urls
            )
        )
        assert "held nowhere" in qreg(
            "status", "--url", new.urls[0], "--config", f"{new.data}/replica-0/replica.toml"
        )
        # Blob files put into one replica by hand: checked, recorded, copied to the others.
        shutil.copytree(f"{blobs}/blobs", f"{new.data}/replica-0/storage/blobs", dirs_exist_ok=True)
        _wait(lambda: all(httpx.get(u + "/health").json()["blobs_missing"] == 0 for u in new.urls))
        for i in range(3):
            for layer in layers:
                assert (
                    httpx.get(
                        f"{new.urls[i]}/v2/backup/app/blobs/{layer}", auth=new.auth
                    ).status_code
                    == 200
                )
        push_image(new.urls[1], "backup/app", "after-restore", "after")
    finally:
        new.stop()
    # A full restore onto a host, laid out as install does: blobs, secret and CA with it.
    port = free_port_block()
    out = qreg(
        "restore",
        backup,
        "--data",
        str(tmp_path / "host"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--raft-address",
        f"127.0.0.1:{free_port_block()}",
        "--grpc-address",
        f"127.0.0.1:{free_port_block()}",
        "--blobs",
        blobs,
    )
    assert "blob files put in place" in out and "qreg serve" in out
    config = str(tmp_path / "host" / "replica.toml")
    with open(f"{old.data}/replica-0/replica.toml") as a, open(config) as b:
        assert a.read().split('secret = "')[1][:20] == b.read().split('secret = "')[1][:20]
    with open(tmp_path / "host.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--config", config], stdout=log, stderr=log
        )
    try:
        verify = ssl.create_default_context(cafile=f"{old.data}/ca.crt")  # the old CA
        url = f"https://127.0.0.1:{port}"
        _wait(lambda: _healthy(url, verify))
        _wait(lambda: httpx.get(url + "/health", verify=verify).json()["blobs_missing"] == 0)
        auth = TokenAuth("admin", old.admin_password, verify)
        for layer in layers:
            assert (
                httpx.get(
                    f"{url}/v2/backup/app/blobs/{layer}", auth=auth, verify=verify
                ).status_code
                == 200
            )
    finally:
        process.terminate()
        process.wait(30)


def _healthy(url: str, verify: ssl.SSLContext) -> bool:
    try:
        return httpx.get(url + "/health", verify=verify, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.5)
