"""The real `notary` client against three replicas over HTTPS: a whole session through
different replicas (init, add, publish, list, a delegation publishing into
targets/releases, the snapshot key handed to the server, delete), the leader killed
between two publishes, two clients publishing at once, and the signed status the
management API and `qreg repo tags` then show."""

from __future__ import annotations

import base64
import concurrent.futures
import os
import shutil
import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout
from tests.qreg_cli import qreg
from tests.trust.signers import Notary, signer_files
from tests.tuf import key_id

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if shutil.which("notary") is None:
        pytest.fail("notary is not installed; the test command installs it")
    started = LocalCluster(str(tmp_path_factory.mktemp("trust") / "c"), replicas=3, tls=True)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def notary(cluster: LocalCluster, tmp_path, name: str, replica: int = 0) -> Notary:
    return Notary(
        str(tmp_path / name), cluster.urls[replica], cluster.ca, "admin", cluster.admin_password
    )


def push_image(cluster: LocalCluster, tmp_path, repository: str, tag: str) -> tuple[str, int]:
    layout, manifest = image_layout(str(tmp_path / f"layout-{tag}"), f"{repository}-{tag}")
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(cluster.ca, certs / "ca.crt")
    skopeo(
        "copy",
        "--dest-cert-dir",
        str(certs),
        "--dest-creds",
        f"admin:{cluster.admin_password}",
        f"oci:{layout}:latest",
        f"docker://{cluster.host}/{repository}:{tag}",
    )
    return manifest.digest, len(manifest.data)


def targets_of(listing: str) -> dict[str, str]:
    """`notary list` output -> {target: role}."""
    rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
    return {row[0]: row[-1] for row in rows}


def test_a_session_through_three_replicas(cluster, tmp_path) -> None:
    gun = f"{cluster.host}/admin/app"
    first = notary(cluster, tmp_path, "first", replica=0)
    first.run("init", gun)
    first.run("publish", gun)
    (tmp_path / "hello").write_text("hello\n")
    first.run("add", gun, "hello", str(tmp_path / "hello"))
    first.run("publish", gun)
    reader = notary(cluster, tmp_path, "reader", replica=1)
    assert targets_of(reader.run("list", gun)) == {"hello": "targets"}

    # A delegation (a certificate, as a signer's client bundle holds) signs an image.
    key, cert = signer_files(str(tmp_path), "releases")
    first.run("delegation", "add", gun, "targets/releases", cert, "--all-paths")
    first.run("publish", gun)
    first.run("key", "import", key, "--role", "targets/releases")
    digest, size = push_image(cluster, tmp_path, "admin/app", "v1")
    hex_digest = digest.split(":", 1)[1]
    first.run("addhash", gun, "v1", str(size), "--sha256", hex_digest, "-r", "targets/releases")
    first.run("publish", gun)
    third = notary(cluster, tmp_path, "third", replica=2)
    assert targets_of(third.run("list", gun)) == {"hello": "targets", "v1": "targets/releases"}

    # The snapshot key moves to the server: it signs every snapshot from then on.
    first.run("key", "rotate", gun, "snapshot", "-r")
    (tmp_path / "two").write_text("two\n")
    first.run("add", gun, "two", str(tmp_path / "two"))
    first.run("publish", gun)
    assert "two" in targets_of(third.run("list", gun))
    base = f"{cluster.urls[1]}/v2/{gun}/_trust/tuf"
    with httpx.Client(auth=cluster.auth, verify=cluster.verify) as client:
        held = client.get(f"{base}/snapshot.key").json()
        snapshot = client.get(f"{base}/snapshot.json").json()
        tags = client.get(f"{cluster.urls[2]}/api/v0/repositories/admin/app/tags").json()
    held_id = key_id(held)
    assert [s["keyid"] for s in snapshot["signatures"]] == [held_id]
    (v1,) = [t for t in tags["tags"] if t["name"] == "v1"]
    assert v1["digest"] == digest and v1["signed"] and v1["signers"] == ["targets/releases"]

    env = {**os.environ, "QREG_LOGIN_FILE": str(tmp_path / "login.json")}
    qreg("login", cluster.urls[2], "-u", "admin", "--ca", cluster.ca, "--password-stdin",
         stdin=cluster.admin_password + "\n", env=env)  # fmt: skip
    table = qreg("repo", "tags", "admin/app", env=env)
    assert "v1" in table and "signed: targets/releases" in table

    first.run("delete", gun, "--remote")
    gone = notary(cluster, tmp_path, "after-delete", replica=1).run("list", gun, check=False)
    assert gone.returncode != 0 and "does not have trust data" in gone.stdout + gone.stderr


def test_the_leader_killed_between_two_publishes_loses_nothing(cluster, tmp_path) -> None:
    gun = f"{cluster.host}/admin/ha"
    leader = cluster.leader()
    survivors = [i for i in range(3) if i != leader]
    writer = notary(cluster, tmp_path, "writer", replica=leader)
    writer.run("init", gun)
    (tmp_path / "one").write_text("one\n")
    writer.run("add", gun, "one", str(tmp_path / "one"))
    writer.run("publish", gun)

    cluster.signal(leader, signal.SIGKILL)
    # The same client, now through a survivor: its keys and changelist travel with it.
    writer.write_config(cluster.urls[survivors[0]], cluster.ca)
    (tmp_path / "two").write_text("two\n")
    writer.run("add", gun, "two", str(tmp_path / "two"))
    writer.run("publish", gun)
    reader = notary(cluster, tmp_path, "ha-reader", replica=survivors[1])
    assert set(targets_of(reader.run("list", gun))) == {"one", "two"}

    cluster.restart(leader)
    again = notary(cluster, tmp_path, "ha-restarted", replica=leader)
    assert set(targets_of(again.run("list", gun))) == {"one", "two"}


def test_two_clients_publishing_at_once_one_wins_and_the_other_retries(cluster, tmp_path) -> None:
    gun = f"{cluster.host}/admin/race"
    alice = notary(cluster, tmp_path, "alice", replica=0)
    alice.run("init", gun)
    alice.run("publish", gun)
    bob = alice.copy(str(tmp_path / "bob"), cluster.urls[1])  # the same keys, another replica
    for client, name in ((alice, "from-alice"), (bob, "from-bob")):
        (tmp_path / name).write_text(name)
        client.run("add", gun, name, str(tmp_path / name))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: c.run("publish", gun, check=False), (alice, bob)))
    assert any(r.returncode == 0 for r in results), [r.stderr for r in results]
    for client, result in zip((alice, bob), results, strict=True):
        if result.returncode != 0:
            client.run("publish", gun)  # fetches what won, applies its change again
    listing = targets_of(notary(cluster, tmp_path, "race-reader", replica=2).run("list", gun))
    assert set(listing) == {"from-alice", "from-bob"}


def test_reading_needs_pull_and_publishing_needs_push(cluster, tmp_path) -> None:
    gun = f"{cluster.host}/admin/private"
    owner = notary(cluster, tmp_path, "owner")
    owner.run("init", gun)
    owner.run("publish", gun)
    with cluster.client() as admin:
        r = admin.post(
            "/api/v0/accounts",
            json={"name": "mallory", "password": "mallory password 1", "global_role": ""},
        )
        assert r.status_code == 201, r.text
    mallory = Notary(
        str(tmp_path / "mallory"), cluster.url, cluster.ca, "mallory", "mallory password 1"
    )
    refused = mallory.run("list", gun, check=False)
    assert refused.returncode != 0
    tuf = f"{cluster.url}/v2/{gun}/_trust/tuf/"
    basic = base64.b64encode(b"mallory:mallory password 1").decode()
    token = httpx.get(
        f"{cluster.url}/auth/token",
        params={"scope": f"repository:{gun}:pull,push,*"},
        headers={"Authorization": f"Basic {basic}"},
        verify=cluster.verify,
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    for method, path in (
        ("GET", "root.json"),
        ("GET", "timestamp.key"),
        ("POST", "timestamp.key"),
        ("DELETE", ""),
    ):
        r = httpx.request(method, tuf + path, headers=bearer, verify=cluster.verify)
        assert r.status_code == 401, (method, path, r.status_code)
