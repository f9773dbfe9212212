"""Garbage collection on three replica processes with real clients: the DTR lab's
Task 7 (a replica down during the run included), and pushes, deletes and collections
racing for minutes while a replica is killed and restarted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, Blob, image_of, layer, sha256, write_layout
from tests.replication.test_faults import wait_converged

pytestmark = pytest.mark.slow


def blob_file(cluster: LocalCluster, index: int, digest: str) -> str:
    hexpart = digest.split(":")[1]
    return os.path.join(
        cluster.data, f"replica-{index}", "storage", "blobs", "sha256", hexpart[:2], hexpart
    )


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def qreg(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_dtr_lab_task_7_soft_delete_then_collect_on_every_replica(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3, env={"QREG_GC_GRACE_S": "0"})
    cluster.start()
    try:
        base, only_lona, only_other = layer("base", 100_000), layer("lona", 200_000), layer("x")
        lona_config, lona = image_of([base, only_lona], label="lona")
        other_config, other = image_of([base, only_other], label="other")
        for name, blobs, top in (
            ("lona", [lona_config, base, only_lona], lona),
            ("other", [other_config, base, only_other], other),
        ):
            path = write_layout(str(tmp_path / name), blobs, top, name)
            skopeo(
                "copy",
                "--dest-tls-verify=false",
                f"oci:{path}:{name}",
                f"docker://{cluster.host}/engineering/barca:{name}",
            )
        lona_only = [lona_config, only_lona]
        wait_for(
            lambda: all(
                os.path.exists(blob_file(cluster, i, b.digest)) for i in range(3) for b in lona_only
            ),
            "every replica holds lona's layers",
        )
        # Soft delete: skopeo deletes the manifest the tag names.
        skopeo("delete", "--tls-verify=false", f"docker://{cluster.host}/engineering/barca:lona")
        for i in range(3):
            with cluster.client(i) as c:
                assert c.get("/v2/engineering/barca/tags/list").json()["tags"] == ["other"]
                assert "engineering/barca" in c.get("/v2/_catalog").json()["repositories"]
        # Replica 2 is down during the run: it deletes its files when it returns.
        leader = cluster.leader()
        down = next(i for i in range(3) if i != leader)
        cluster.sigkill(down)
        config = os.path.join(cluster.data, f"replica-{leader}", "replica.toml")
        dry = qreg("gc", "--config", config, "run", "--dry-run")
        assert "would remove 2 blobs" in dry
        assert lona_config.digest in dry and only_lona.digest in dry
        out = qreg("gc", "--config", config, "run")
        assert "removed 2 of 2 unreferenced blobs" in out, out
        up = [i for i in range(3) if i != down]
        wait_for(
            lambda: (
                not any(
                    os.path.exists(blob_file(cluster, i, b.digest)) for i in up for b in lona_only
                )
            ),
            "the running replicas deleted lona's files",
        )
        assert os.path.exists(blob_file(cluster, down, only_lona.digest))
        cluster.restart(down)
        wait_for(
            lambda: not any(os.path.exists(blob_file(cluster, down, b.digest)) for b in lona_only),
            "the returning replica deleted lona's files",
        )
        for i in range(3):
            for blob in (base, other_config, only_other):
                assert os.path.exists(blob_file(cluster, i, blob.digest))
            out_dir = str(tmp_path / f"pulled-{i}")
            skopeo(
                "copy",
                "--src-tls-verify=false",
                f"docker://{cluster.urls[i].split('://')[1]}/engineering/barca:other",
                f"dir:{out_dir}",
            )
            assert dir_digests(out_dir)["manifest.json"] == other.digest
        status = qreg("gc", "--config", config, "status")
        assert "finished" in status and "files" in status
        wait_for(
            lambda: (
                len(
                    httpx.get(f"{cluster.urls[0]}/api/v0/gc", auth=cluster.auth).json()["runs"][0][
                        "sweeps"
                    ]
                )
                == 3
            ),
            "every replica recorded its sweep",
        )
    finally:
        cluster.stop()


# ---- the race -------------------------------------------------------------------------

REPOSITORIES = ("race/a", "race/b", "race/c")


class Writer:
    """Pushes images made of layers from a shared pool through random replicas, as
    docker does (HEAD each blob, mount or upload what is missing, then the manifest),
    starting again on any refusal; deletes some of what it pushed."""

    def __init__(self, cluster: LocalCluster, pool: list[Blob], seed: int) -> None:
        self.cluster = cluster
        self.pool = pool
        self.random = random.Random(seed)
        self.seed = seed
        self.live: dict[tuple[str, str], list[str]] = {}  # (repo, manifest) -> blob digests
        self.deleted: dict[tuple[str, str], list[str]] = {}
        self.unsure: set[tuple[str, str]] = set()  # a delete that got no answer
        self.retries = 0
        self.unexpected: list[str] = []

    def push_once(
        self, client: httpx.Client, repo: str, tag: str, blobs: list[Blob], top: Blob
    ) -> bool:
        for blob in blobs:
            if client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
                continue
            source = self.random.choice(REPOSITORIES)
            r = client.post(
                f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": source}
            )
            if r.status_code == 201:
                continue
            r = client.post(
                f"/v2/{repo}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
            )
            if r.status_code != 201:
                return self.refused(r)
        r = client.put(
            f"/v2/{repo}/manifests/{tag}", content=top.data, headers={"Content-Type": OCI_MANIFEST}
        )
        return r.status_code == 201 or self.refused(r)

    def refused(self, r: httpx.Response) -> bool:
        code = (
            r.json()["errors"][0]["code"]
            if r.headers.get("content-type", "").startswith("application/json")
            else ""
        )
        if r.status_code < 500 and code not in (
            "MANIFEST_BLOB_UNKNOWN",
            "BLOB_UPLOAD_INVALID",
            "BLOB_UNKNOWN",
        ):
            self.unexpected.append(f"{r.status_code} {r.text[:200]}")
        self.retries += 1
        return False

    def run(self, until: float) -> None:
        n = 0
        while time.monotonic() < until:
            n += 1
            repo = self.random.choice(REPOSITORIES)
            layers = self.random.sample(self.pool, 2)
            config, top = image_of(layers, label=f"w{self.seed}-{n}")
            for _ in range(20):
                index = self.random.randrange(len(self.cluster.urls))
                try:
                    with self.cluster.client(index, timeout=15) as client:
                        if self.push_once(
                            client, repo, f"w{self.seed}-{n}", [config, *layers], top
                        ):
                            self.live[(repo, top.digest)] = [config.digest] + [
                                b.digest for b in layers
                            ]
                            break
                except httpx.HTTPError:
                    self.retries += 1
                time.sleep(0.1)
            if self.live and self.random.random() < 0.6:
                doomed = self.random.choice(sorted(self.live))
                try:
                    with self.cluster.client(self.random.randrange(3), timeout=15) as client:
                        r = client.delete(f"/v2/{doomed[0]}/manifests/{doomed[1]}")
                    if r.status_code == 202:
                        self.deleted[doomed] = self.live.pop(doomed)
                except httpx.HTTPError:
                    self.unsure.add(doomed)  # it may or may not have gone


def collect_back_to_back(cluster: LocalCluster, until: float, runs: list[dict]) -> None:
    while time.monotonic() < until:
        index = random.randrange(3)
        try:
            with cluster.client(index, timeout=60) as client:
                r = client.post("/api/v0/gc/runs", json={})
            if r.status_code == 200:
                runs.append(r.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.05)


def verify_everywhere(cluster: LocalCluster, live: dict, tmp_path) -> None:
    """Every acknowledged image not deleted pulls whole from every replica: skopeo
    verifies a sample, the rest are fetched and hashed here."""
    sample = random.Random(7).sample(sorted(live), min(6, len(live)))
    for i in range(3):
        with cluster.client(i) as client:
            for (repo, digest), blobs in live.items():
                r = client.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
                assert r.status_code == 200 and sha256(r.content) == digest, (i, repo, digest)
                for blob in blobs:
                    got = client.get(f"/v2/{repo}/blobs/{blob}")
                    assert got.status_code == 200, (i, repo, blob, got.text)
                    assert sha256(got.content) == blob
        for repo, digest in sample:
            out = str(tmp_path / f"pull-{i}-{digest[7:19]}")
            host = cluster.urls[i].split("://")[1]
            skopeo(
                "copy", "--src-tls-verify=false", f"docker://{host}/{repo}@{digest}", f"dir:{out}"
            )
            assert dir_digests(out)["manifest.json"] == digest


def test_pushes_deletes_and_collections_race_with_a_replica_killed(tmp_path) -> None:
    seconds = float(os.environ.get("QREG_GC_RACE_S", "60"))  # longer soaks: set it
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3, env={"QREG_GC_GRACE_S": "0"})
    cluster.start()
    try:
        # Many pool layers, and most images deleted again: layers keep falling out of
        # use and being pushed again while collections run.
        pool = [layer(f"pool{n}", 3000) for n in range(24)]
        until = time.monotonic() + seconds
        writers = [Writer(cluster, pool, seed) for seed in range(3)]
        runs: list[dict] = []
        threads = [threading.Thread(target=w.run, args=(until,)) for w in writers]
        threads.append(threading.Thread(target=collect_back_to_back, args=(cluster, until, runs)))
        for t in threads:
            t.start()
        # A third of the way in, a replica is killed mid-run and comes back later.
        time.sleep(seconds / 3)
        victim = random.randrange(3)
        cluster.signal(victim, signal.SIGKILL)
        time.sleep(min(10.0, seconds / 6))
        cluster.restart(victim)
        for t in threads:
            t.join()
        wait_converged(cluster, [0, 1, 2])
        unsure = {k for w in writers for k in w.unsure}
        live = {k: v for w in writers for k, v in w.live.items() if k not in unsure}
        deleted = {k: v for w in writers for k, v in w.deleted.items()}
        assert not [u for w in writers for u in w.unexpected], [w.unexpected for w in writers]
        assert len(runs) >= 5 and sum(r["blobs_removed"] for r in runs) > 0
        assert len(live) >= 20 and len(deleted) >= 5
        verify_everywhere(cluster, live, tmp_path)
        # Once quiet, a last collection removes every blob only deleted images used.
        with cluster.client(0, timeout=60) as client:
            assert client.post("/api/v0/gc/runs", json={}).status_code == 200
        needed = {b for blobs in live.values() for b in blobs}
        maybe = {b for w in writers for k in w.unsure for b in w.live.get(k, [])}
        only_deleted = {b for blobs in deleted.values() for b in blobs} - needed - maybe
        assert only_deleted
        wait_for(
            lambda: (
                not any(
                    os.path.exists(blob_file(cluster, i, d)) for i in range(3) for d in only_deleted
                )
            ),
            "every replica deleted the files of blobs only deleted images used",
        )
        wait_for(
            lambda: all(os.path.exists(blob_file(cluster, i, d)) for i in range(3) for d in needed),
            "every replica holds every blob a live image needs",
        )
        print(
            f"race: {len(live)} live, {len(deleted)} deleted images, {len(runs)} collections "
            f"removing {sum(r['blobs_removed'] for r in runs)} blobs, "
            f"{sum(w.retries for w in writers)} pushes retried"
        )
    finally:
        cluster.stop()


def test_a_scheduled_collection_runs_once_on_the_leader(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    cluster = LocalCluster(str(tmp_path / "data"), replicas=3, env={"QREG_GC_GRACE_S": "0"})
    cluster.start()
    try:
        leader = cluster.leader()
        at = datetime.now(UTC) + timedelta(seconds=4)
        with cluster.client(1) as client:
            r = client.put("/api/v0/gc/schedule", json={"cron": f"{at.second} * * * * *"})
            assert r.status_code == 200, r.text

        def runs() -> list[dict]:
            with cluster.client(2) as client:
                return list(client.get("/api/v0/gc").json()["runs"])

        wait_for(lambda: runs() and runs()[0]["outcome"] != "running", "the scheduled run", 20)
        time.sleep(2)  # every replica's schedule fired by now
        found = runs()
        assert len(found) == 1, found
        assert found[0]["replica"] == f"replica-{leader}"
        started = datetime.fromisoformat(found[0]["started"])
        assert abs((started - at.replace(microsecond=0)).total_seconds()) < 2
    finally:
        cluster.stop()
