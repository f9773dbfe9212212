"""Three replica processes on loopback: replication, failover, pauses, and a kill of all."""

from __future__ import annotations

import itertools
import json
import signal
import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster, admin_auth
from tests.images import OCI_MANIFEST, Blob, image, image_layout, sha256

pytestmark = pytest.mark.slow


@pytest.fixture()
def cluster(tmp_path) -> Iterator[LocalCluster]:
    c = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    yield c
    c.stop()


def push_image(
    url: str,
    name: str,
    tag: str,
    seed: str,
    timeout: float = 10,
    verify: ssl.SSLContext | bool = True,
    auth: httpx.Auth | None = None,
) -> Blob:
    config, layers, manifest = image(seed, layers=1, layer_size=2000)
    with httpx.Client(
        base_url=url, timeout=timeout, verify=verify, auth=auth or admin_auth(verify)
    ) as client:
        for blob in [config, *layers]:
            r = client.post(
                f"/v2/{name}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
            )
            r.raise_for_status()
        r = client.put(
            f"/v2/{name}/manifests/{tag}",
            content=manifest.data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        r.raise_for_status()
    return manifest


def test_push_through_one_pull_through_the_others(cluster: LocalCluster, tmp_path) -> None:
    layout, manifest = image_layout(str(tmp_path / "layout"), "three", layer_size=1_000_000)
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{layout}:latest",
        f"docker://{cluster.urls[0].removeprefix('http://')}/team/app:1",
    )
    for i in (1, 2):
        out = str(tmp_path / f"out{i}")
        # A tag written through replica 0 is read at once through replica i.
        skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{cluster.urls[i].removeprefix('http://')}/team/app:1",
            f"dir:{out}",
        )
        assert dir_digests(out)["manifest.json"] == manifest.digest
    views = [cluster.health(i) for i in range(3)]
    assert {v["leader"] for v in views} == {f"replica-{cluster.leader()}"}
    assert sorted(v["role"] for v in views) == ["follower", "follower", "leader"]


def test_read_your_write_across_replicas(cluster: LocalCluster) -> None:
    for n in range(30):
        writer, reader = cluster.urls[n % 3], cluster.urls[(n + 1) % 3]
        manifest = push_image(writer, "ryw/app", f"t{n}", f"ryw{n}")
        r = httpx.get(
            f"{reader}/v2/ryw/app/manifests/t{n}",
            auth=cluster.auth,
            headers={"Accept": OCI_MANIFEST},
        )
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == manifest.digest


def test_leader_sigkill_failover(cluster: LocalCluster) -> None:
    leader = cluster.leader()
    acknowledged: dict[str, str] = {}
    failures: list[float] = []
    stop = threading.Event()

    def writer() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            url = cluster.urls[n % 3]
            if url == cluster.urls[leader] and killed.is_set():
                url = cluster.urls[(n + 1) % 3]
            try:
                acknowledged[f"w{n}"] = push_image(url, "failover/app", f"w{n}", f"f{n}").digest
            except httpx.HTTPError:
                failures.append(time.monotonic())

    killed = threading.Event()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)
        before = len(acknowledged)
        cluster.sigkill(leader)
        killed.set()
        killed_at = time.monotonic()
        survivors = [i for i in range(3) if i != leader]
        new_leader = cluster.leader(among=survivors, excluding=leader)
        assert new_leader != leader
        deadline = time.monotonic() + 30
        while len(acknowledged) <= before + 5 and time.monotonic() < deadline:
            time.sleep(0.1)  # until writes resume through the survivors
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(acknowledged) > before + 5, "writes did not resume through the survivors"
    window = (max(failures) - killed_at) if failures else 0.0
    print(f"write unavailability after leader SIGKILL: {window:.2f} s")
    cluster.restart(leader)
    deadline = time.monotonic() + 30
    while cluster.health(leader)["applied_index"] < cluster.health(new_leader)["commit_index"]:
        assert time.monotonic() < deadline, "the old leader did not catch up"
        time.sleep(0.1)
    for i in range(3):
        tags = httpx.get(f"{cluster.urls[i]}/v2/failover/app/tags/list", auth=cluster.auth).json()[
            "tags"
        ]
        assert set(acknowledged) <= set(tags)
        for tag, digest in acknowledged.items():
            r = httpx.head(
                f"{cluster.urls[i]}/v2/failover/app/manifests/{tag}",
                auth=cluster.auth,
                headers={"Accept": OCI_MANIFEST},
            )
            assert r.headers["Docker-Content-Digest"] == digest


def test_pausing_a_minority_then_a_majority(cluster: LocalCluster) -> None:
    manifest = push_image(cluster.urls[0], "pause/app", "before", "p0")
    leader = cluster.leader()
    follower = next(i for i in range(3) if i != leader)
    cluster.signal(follower, signal.SIGSTOP)
    # One of three paused: nothing stops.
    push_image(cluster.urls[leader], "pause/app", "minority", "p1")
    remaining = next(i for i in range(3) if i not in (leader, follower))
    cluster.signal(leader, signal.SIGSTOP)
    # Two of three paused: writes fail fast with the quorum error...
    started = time.monotonic()
    with pytest.raises(httpx.HTTPStatusError) as failed:
        push_image(cluster.urls[remaining], "pause/app", "nope", "p2", timeout=30)
    assert time.monotonic() - started < 10
    assert failed.value.response.status_code == 503
    assert "quorum" in failed.value.response.json()["errors"][0]["message"]
    assert (
        cluster.health(remaining)["has_quorum"] is False
        or httpx.get(cluster.urls[remaining] + "/health").status_code == 503
    )
    # ...while pulls of what the replica holds keep working.
    r = httpx.get(
        f"{cluster.urls[remaining]}/v2/pause/app/manifests/before",
        auth=cluster.auth,
        headers={"Accept": OCI_MANIFEST},
        timeout=10,
    )
    assert r.status_code == 200 and r.content == manifest.data
    cluster.signal(leader, signal.SIGCONT)
    cluster.signal(follower, signal.SIGCONT)
    cluster.leader()
    deadline = time.monotonic() + 30
    while True:
        try:
            push_image(cluster.urls[remaining], "pause/app", "after", "p3")
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "the cluster did not recover after SIGCONT"
            time.sleep(0.2)


def test_kill_all_mid_push_then_restart(cluster: LocalCluster) -> None:
    acknowledged: dict[str, Blob] = {}
    stop = threading.Event()

    def writer(offset: int) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            tag = f"k{offset}-{n}"
            try:
                acknowledged[tag] = push_image(
                    cluster.urls[(n + offset) % 3], "killall/app", tag, tag
                )
            except httpx.HTTPError:
                return

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    try:
        # Kill mid-push once enough pushes are acknowledged, however slow the machine.
        deadline = time.monotonic() + 120
        while len(acknowledged) <= 10:
            assert time.monotonic() < deadline, f"only {len(acknowledged)} pushes in 120 s"
            assert any(t.is_alive() for t in threads), "every writer failed"
            time.sleep(0.05)
        cluster.kill_all()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert len(acknowledged) > 10
    cluster.start()
    for i in range(3):
        with cluster.client(i) as client:
            for tag, manifest in acknowledged.items():
                r = client.get(f"/v2/killall/app/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
                assert r.status_code == 200 and r.content == manifest.data, tag
                for layer in json.loads(manifest.data)["layers"]:
                    blob = client.get(f"/v2/killall/app/blobs/{layer['digest']}")
                    assert sha256(blob.content) == layer["digest"]


def test_status_shows_every_replica(cluster: LocalCluster) -> None:
    import subprocess
    import sys

    leader = cluster.leader()
    config = f"{cluster.data}/replica-0/replica.toml"
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "status", "--url", cluster.urls[1], "--config", config],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "ADDRESS", "ROLE", "TERM"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"replica-0", "replica-1", "replica-2"}
    assert rows[f"replica-{leader}"][2] == "leader"
    # Every replica applies what the log holds: qreg upgrade-check says go on.
    check = subprocess.run(
        [sys.executable, "-m", "cli.main", "upgrade-check", "--url", cluster.urls[1],
         "--config", config],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "every replica applies version 1: safe to go on" in check.stdout
    assert len([line for line in check.stdout.splitlines() if line.endswith(" ok")]) == 3
    cluster.sigkill((leader + 1) % 3)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "status",
            "--url",
            cluster.urls[leader],
            "--config",
            config,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1 and "down" in out.stdout
    check = subprocess.run(
        [sys.executable, "-m", "cli.main", "upgrade-check", "--url", cluster.urls[leader],
         "--config", config],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 1 and "did not answer" in check.stdout, check.stdout
    # Without credentials the cluster does not tell who leads, nor any Raft address.
    anonymous = httpx.get(cluster.urls[leader] + "/api/v0/replicas", timeout=10)
    assert anonymous.status_code == 401
    health = httpx.get(cluster.urls[leader] + "/health", timeout=10).json()
    assert "pid" not in health and "last_contact_s" not in health
    as_admin = httpx.get(
        cluster.urls[leader] + "/api/v0/replicas",
        timeout=10,
        auth=("admin", cluster.admin_password),
    ).json()
    assert all(m["raft_address"] for m in as_admin["replicas"])
    assert out.returncode == 1 and "down" in out.stdout
