"""Push and pull mirroring with a real second registry: distribution 2.8 (Debian's
docker-registry) without authentication, with htpasswd, and with token authentication
(this cluster as its token service: distribution trusts the cluster CA's key, found by
the tokens' libtrust key id); checked with skopeo."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from bench.registry_bench import distribution, serve_until_ready
from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout, multi_platform_layout
from tests.qreg_cli import qreg as run_qreg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("docker-registry") is None:
        pytest.fail("distribution is not installed; the test command installs docker-registry")
    return str(tmp_path_factory.mktemp("mirroring"))


@pytest.fixture(scope="module")
def plain(work: str) -> Iterator[str]:
    binary, config, port = distribution(work, "plain")
    process, url = serve_until_ready([binary, "serve", config], port, "distribution")
    yield url
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def guarded(work: str) -> Iterator[str]:
    htpasswd = os.path.join(work, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write(subprocess.run(["htpasswd", "-Bbn", "mirror", "mirror-password"],
                               capture_output=True, text=True, check=True).stdout)  # fmt: skip
    extra = f"auth:\n  htpasswd:\n    realm: guarded\n    path: {htpasswd}\n"
    binary, config, port = distribution(work, "guarded", extra)
    process, url = serve_until_ready([binary, "serve", config], port, "distribution", ready=401)
    yield url
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def cluster(work: str) -> Iterator[LocalCluster]:
    running = LocalCluster(os.path.join(work, "data"), replicas=2).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tokened(work: str, cluster: LocalCluster) -> Iterator[str]:
    """distribution whose clients get their tokens from the cluster's token service."""
    extra = (f"auth:\n  token:\n    realm: {cluster.url}/auth/token\n"
             f"    service: quorum-registry\n    issuer: quorum-registry\n"
             f"    rootcertbundle: {cluster.ca}\n")  # fmt: skip
    binary, config, port = distribution(work, "tokened", extra)
    process, url = serve_until_ready([binary, "serve", config], port, "distribution", ready=401)
    yield url
    process.terminate()
    process.wait()


def _mirror(
    cluster: LocalCluster, repo: str, url: str, kind: str = "push_mirror", **extra: object
) -> str:
    with cluster.client() as admin:
        body = {"kind": kind, "scope": repo, "url": url, "allow_private": True}
        r = admin.post("/api/v0/webhooks", json={**body, **extra})
        assert r.status_code == 201, r.text
        assert "secret" not in r.json() and "password" not in r.text
        return str(r.json()["id"])


def _push(cluster: LocalCluster, work: str, repo: str, tag: str, replica: int = 0) -> None:
    layout, _ = image_layout(os.path.join(work, f"layout-{repo.replace('/', '-')}-{tag}"),
                             f"{repo}{tag}", layers=2, layer_size=300_000)  # fmt: skip
    host = cluster.urls[replica].removeprefix("http://")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest",
           f"docker://{host}/{repo}:{tag}")  # fmt: skip


def _digest(reference: str, *creds: str) -> str:
    raw = skopeo("inspect", "--raw", "--tls-verify=false", *creds, f"docker://{reference}")
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest() if raw else ""


def _log(cluster: LocalCluster, mirror: str) -> list[dict]:
    with cluster.client() as admin:
        return list(admin.get(f"/api/v0/webhooks/{mirror}").json()["deliveries"])


def _wait(what: str, check, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_pushes_are_mirrored_to_another_registry(
    cluster: LocalCluster, plain: str, work: str
) -> None:
    mirror = _mirror(cluster, "team/app", f"{plain}/mirrored/app", tag_pattern="v*")
    _push(cluster, work, "team/app", "v1", replica=1)
    _push(cluster, work, "team/app", "dev")
    _wait("v1 mirrored", lambda: any(d["status"] == "delivered" for d in _log(cluster, mirror)))
    ours = _digest(f"{cluster.host}/team/app:v1")
    theirs = _digest(f"{plain.removeprefix('http://')}/mirrored/app:v1")
    assert ours == theirs
    tags = httpx.get(f"{plain}/v2/mirrored/app/tags/list").json()["tags"]
    assert tags == ["v1"]  # dev does not match the pattern
    status = _log(cluster, mirror)[0]
    assert status["code"] == 201 and "v1 copied" in status["excerpt"], status
    # The same image again under a new tag sends no blob: the other side has them.
    source, again = f"docker://{cluster.host}/team/app:v1", f"docker://{cluster.host}/team/app:v1.0"
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", source, again)
    _wait("v1.0 mirrored", lambda: len([d for d in _log(cluster, mirror)
                                        if d["status"] == "delivered"]) == 2)  # fmt: skip
    assert "(0 blobs sent)" in _log(cluster, mirror)[0]["excerpt"]


def test_a_mirror_with_credentials_and_one_with_wrong_ones(
    cluster: LocalCluster, guarded: str, work: str
) -> None:
    good = _mirror(cluster, "team/secure", f"{guarded}/secure/app",
                   username="mirror", password="mirror-password")  # fmt: skip
    bad = _mirror(cluster, "team/secure", f"{guarded}/other/app",
                  username="mirror", password="wrong")  # fmt: skip
    _push(cluster, work, "team/secure", "1.0")
    _wait("mirrored with credentials",
          lambda: any(d["status"] == "delivered" for d in _log(cluster, good)))  # fmt: skip
    creds = "--creds=mirror:mirror-password"
    assert _digest(f"{guarded.removeprefix('http://')}/secure/app:1.0", creds) == _digest(
        f"{cluster.host}/team/secure:1.0"
    )
    time.sleep(4)  # three attempts at least: 1 s and 2 s apart
    with cluster.client() as admin:
        found = admin.get(f"/api/v0/webhooks/{bad}").json()
    assert found["deliveries"] == []  # still being retried: nothing settled yet
    with cluster.client() as admin:
        events = admin.get("/api/v0/events", params={"repository": "team/secure"}).json()
    assert [e["tag"] for e in events["events"]] == ["1.0"]
    assert json.dumps(found).count("wrong") == 0  # the password is never shown


def _push_there(
    work: str, registry: str, repo: str, tag: str, *creds: str, index: bool = False
) -> str:
    """An image pushed straight to the other registry; its digest."""
    path = os.path.join(work, f"there-{repo.replace('/', '-')}-{tag}")
    make = multi_platform_layout if index else image_layout
    layout, manifest = make(path, f"there {repo} {tag} {time.time()}")
    skopeo("copy", "--all", "--dest-tls-verify=false", *creds, f"oci:{layout}:latest",
           f"docker://{registry.removeprefix('http://')}/{repo}:{tag}")  # fmt: skip
    return manifest.digest


def _tags(cluster: LocalCluster, repo: str) -> list[str]:
    with cluster.client(1) as admin:
        r = admin.get(f"/v2/{repo}/tags/list")
        return list(r.json().get("tags") or []) if r.status_code == 200 else []


def test_a_pull_mirror_copies_in_new_and_moved_tags(
    cluster: LocalCluster, plain: str, guarded: str, work: str
) -> None:
    v1 = _push_there(work, plain, "upstream/app", "v1")
    _push_there(work, plain, "upstream/app", "dev")
    mirror = _mirror(cluster, "team/pulled", f"{plain}/upstream/app", kind="pull_mirror",
                     tag_pattern="v*", interval_s=10)  # fmt: skip
    _wait("v1 copied in", lambda: _tags(cluster, "team/pulled") == ["v1"])
    other = cluster.urls[1].removeprefix("http://")
    assert _digest(f"{other}/team/pulled:v1") == v1  # served by either replica
    entry = _log(cluster, mirror)[0]
    assert entry["status"] == "delivered" and entry["tag"] == "v1", entry
    # A new tag (a multi-platform index: children first) and a moved one, next poll.
    v2 = _push_there(work, plain, "upstream/app", "v2", index=True)
    moved = _push_there(work, plain, "upstream/app", "v1")
    _wait("v2 and the moved v1 copied in", lambda: _tags(cluster, "team/pulled") == ["v1", "v2"]
          and _digest(f"{cluster.host}/team/pulled:v1") == moved, timeout=40)  # fmt: skip
    assert _digest(f"{cluster.host}/team/pulled:v2") == v2
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{cluster.host}/team/pulled:v2",
           f"dir:{os.path.join(work, 'pulled-v2')}")  # fmt: skip
    logged = [d["tag"] for d in _log(cluster, mirror) if d["status"] == "delivered"]
    assert sorted(logged) == ["v1", "v1", "v2"], logged  # an unchanged tag is not copied again

    # From a registry that wants credentials: copied with them, refused without.
    creds = "--dest-creds=mirror:mirror-password"
    secured = _push_there(work, guarded, "secured/app", "1.0", creds)
    env = {**os.environ, "QREG_LOGIN_FILE": os.path.join(work, "login.json")}
    run_qreg("login", cluster.url, "-u", "admin", "--password-stdin",
             stdin=cluster.admin_password + "\n", env=env)  # fmt: skip
    out = run_qreg("mirror", "pull", "team/pulled-secure", f"{guarded}/secured/app",
                   "--username", "mirror", "--password-stdin", "--allow-private",
                   stdin="mirror-password\n", env=env)  # fmt: skip
    good = out.split()[2].rstrip(":")
    bad = _mirror(cluster, "team/pulled-refused", f"{guarded}/secured/app", kind="pull_mirror",
                  username="mirror", password="wrong")  # fmt: skip
    _wait("copied in with credentials", lambda: _tags(cluster, "team/pulled-secure") == ["1.0"])
    assert _digest(f"{cluster.host}/team/pulled-secure:1.0") == secured
    _wait("the refusal logged", lambda: bool(_log(cluster, bad)))
    refused = _log(cluster, bad)[0]
    assert refused["status"] == "failed" and refused["code"] == 401, refused
    assert _tags(cluster, "team/pulled-refused") == []
    listed = run_qreg("webhook", "list", env=env)
    assert good in listed and "pull_mirror" in listed and "mirror-password" not in listed
    assert "copied in as" in run_qreg("webhook", "show", good, env=env)


def test_mirrors_to_and_from_a_registry_that_takes_our_tokens(
    cluster: LocalCluster, tokened: str, work: str
) -> None:
    account = {"username": "admin", "password": cluster.admin_password}
    push = _mirror(cluster, "team/tokened", f"{tokened}/tokened/app", **account)
    _push(cluster, work, "team/tokened", "1")
    _wait("mirrored with a token",
          lambda: any(d["status"] == "delivered" for d in _log(cluster, push)))  # fmt: skip
    creds = f"--creds=admin:{cluster.admin_password}"
    there = _digest(f"{tokened.removeprefix('http://')}/tokened/app:1", creds)
    assert there and there == _digest(f"{cluster.host}/team/tokened:1")
    # And back in, through a pull mirror authenticating the same way.
    _mirror(cluster, "team/tokened-back", f"{tokened}/tokened/app", kind="pull_mirror", **account)
    _wait("copied back in", lambda: _tags(cluster, "team/tokened-back") == ["1"])
    assert _digest(f"{cluster.host}/team/tokened-back:1") == there
