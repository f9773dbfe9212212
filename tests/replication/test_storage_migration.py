"""`qreg storage migrate`: a running three-replica cluster moves its blobs from local
disks to a SeaweedFS bucket (rolling restart onto the new backend, a second run for
what was pushed meanwhile), then back to local disks, serving every image throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cluster import LocalCluster
from tests.object_store import SeaweedFS, s3_client
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow


def qreg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def rolling_restart(cluster: LocalCluster) -> None:
    for i in range(3):
        cluster.signal(i, signal.SIGTERM)
        cluster.wait_stopped(i)
        cluster.restart(i)
        cluster.leader()


def pulls_everywhere(cluster: LocalCluster, images: dict[str, str]) -> None:
    for i in range(3):
        with cluster.client(i) as client:
            for tag, manifest in images.items():
                r = client.get(f"/v2/move/app/manifests/{tag}")
                assert r.status_code == 200 and r.headers["docker-content-digest"] == manifest
                for entry in json.loads(r.content)["layers"]:
                    blob = client.get(f"/v2/move/app/blobs/{entry['digest']}")
                    assert blob.status_code == 200 and len(blob.content) == entry["size"], (
                        i,
                        entry,
                    )


def test_migrate_to_object_storage_and_back(tmp_path) -> None:
    store = SeaweedFS(str(tmp_path / "seaweedfs")).start()
    settings = store.settings(prefix="moved")
    s3_env = store.replica_env(prefix="moved")
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    config = os.path.join(cluster.data, "replica-0", "replica.toml")
    try:
        images = {
            f"v{n}": push_image(cluster.urls[n % 3], "move/app", f"v{n}", f"move{n}",
                                verify=cluster.verify, auth=cluster.auth).digest
            for n in range(4)
        }  # fmt: skip
        first = qreg(s3_env, "storage", "migrate", "--to", "s3", "--config", config)
        assert first.returncode == 0, first.stderr
        assert "8 blobs copied, 0 already there" in first.stdout  # a config and a layer each
        again = qreg(s3_env, "storage", "migrate", "--to", "s3", "--config", config)
        assert "0 blobs copied, 8 already there" in again.stdout, again.stdout
        listed = s3_client(settings).list_objects_v2(Bucket=settings.bucket, Prefix="moved/")
        assert len(listed["Contents"]) == 8

        cluster.env.update(s3_env)
        rolling_restart(cluster)
        # Pushed to a replica still on local disk would be copied by the second run;
        # pushed now it goes to the bucket straight away.
        images["v4"] = push_image(
            cluster.urls[1], "move/app", "v4", "move4", verify=cluster.verify, auth=cluster.auth
        ).digest
        after = qreg(s3_env, "storage", "migrate", "--to", "s3", "--config", config)
        assert "0 blobs copied, 10 already there" in after.stdout, after.stdout
        pulls_everywhere(cluster, images)

        # And back: into replica-0's own storage (its files from before are still there:
        # only what was pushed to the bucket is copied); the others copy from it.
        storage = os.path.join(cluster.data, "replica-0", "storage")
        back = qreg(s3_env, "storage", "migrate", "--to", "local", "--into", storage,
                    "--config", config)  # fmt: skip
        assert back.returncode == 0, back.stderr
        assert "2 blobs copied, 8 already there" in back.stdout
        for key in s3_env:
            del cluster.env[key]
        rolling_restart(cluster)
        deadline = time.monotonic() + 60
        while any(cluster.health(i)["blobs_missing"] for i in range(3)):
            assert time.monotonic() < deadline, [
                cluster.health(i)["blobs_missing"] for i in range(3)
            ]
            time.sleep(0.5)
        pulls_everywhere(cluster, images)
    finally:
        cluster.stop()
        store.stop()
