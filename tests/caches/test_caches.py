"""Geographic caches end to end: `qreg up --caches eu` runs a cache node beside the
cluster; users who chose it pull at the cluster's URL with skopeo and get their
blobs from the cache through a redirect and a grant."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from replica import pki
from replica.auth import grants
from tests.caches.common import MIB, PASSWORD, add_users, metric, pull, push_blob, push_image
from tests.clients.tools import run
from tests.cluster import LocalCluster
from tests.images import sha256

pytestmark = pytest.mark.slow
FOLLOWER = "containerd/v1.7.24"


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cluster = LocalCluster(
        str(tmp_path_factory.mktemp("geo") / "data"),
        tls=True,
        caches=("eu",),
        cache_max_bytes=12 * MIB,
    )
    cluster.start()
    admin = ("admin", cluster.admin_password)
    try:
        add_users(
            cluster,
            {"ahab": "read-only", "moby": "read-only", "orca": "read-only", "nobody": "none"},
        )
        r = httpx.post(
            cluster.url + "/api/v0/content_caches/eu/users",
            auth=admin,
            verify=cluster.verify,
            json={"users": ["ahab", "moby", "nobody"]},
        )
        assert r.status_code == 200, r.text
        yield cluster
    finally:
        cluster.stop()


def test_users_of_a_cache_pull_through_it_and_the_second_pull_stays_there(geo, tmp_path) -> None:
    cache = geo.caches["eu"]
    manifest = push_image(geo, str(tmp_path), "geo/app:1", "geo", layers=3, layer_size=MIB)
    blobs = 4  # three layers and the config
    first = pull(geo, str(tmp_path), "ahab", "geo/app:1")
    assert metric(geo.url, "qreg_cache_redirects_total", geo.verify) >= blobs
    assert metric(cache, "qreg_cache_upstream_fetches_total", geo.verify) == blobs
    sent = metric(geo.url, "qreg_blob_bytes_sent_total", geo.verify)
    second = pull(geo, str(tmp_path), "moby", "geo/app:1")
    assert second == first and first["manifest.json"] == sha256(manifest.data)
    # The cluster sent no blob bytes for moby: all came from the cache's disk.
    assert metric(geo.url, "qreg_blob_bytes_sent_total", geo.verify) == sent
    assert metric(cache, "qreg_cache_upstream_fetches_total", geo.verify) == blobs
    assert metric(cache, "qreg_cache_hits_total", geo.verify) >= blobs
    # The cache logged each request: who, where the bytes came from; never the grant.
    lines = [
        json.loads(line)
        for line in Path(geo.data, "cache-eu", "cache.log").read_text().splitlines()
    ]
    requests = [e for e in lines if e.get("event") == "request" and "/blobs/" in e["path"]]
    assert {(e["user"], e["source"]) for e in requests if e["method"] == "GET"} == {
        ("ahab", "upstream"),
        ("moby", "disk"),
    }
    assert all(e["status"] == 200 and e["bytes"] > 0 for e in requests if e["method"] == "GET")
    assert "grant" not in Path(geo.data, "cache-eu", "cache.log").read_text()
    # orca has no cache: never redirected, served by the cluster.
    redirects = metric(geo.url, "qreg_cache_redirects_total", geo.verify)
    assert pull(geo, str(tmp_path), "orca", "geo/app:1") == first
    assert metric(geo.url, "qreg_cache_redirects_total", geo.verify) == redirects


def _redirect(cluster: LocalCluster, user: str, repo: str, digest: str) -> httpx.Response:
    token = httpx.get(
        cluster.url + "/auth/token",
        auth=(user, PASSWORD),
        verify=cluster.verify,
        params={"scope": f"repository:{repo}:pull"},
    ).json()["token"]
    # httpx stands in for a registry client that follows redirects (it does when asked):
    # the replica redirects only clients known to.
    return httpx.get(
        f"{cluster.url}/v2/{repo}/blobs/{digest}",
        verify=cluster.verify,
        headers={"Authorization": f"Bearer {token}", "User-Agent": FOLLOWER},
    )


def test_grants_are_bound_to_one_blob_and_checked(geo) -> None:
    one = push_blob(geo, "geo/grants", os.urandom(1000))
    other = push_blob(geo, "geo/grants", os.urandom(1001))
    r = _redirect(geo, "ahab", "geo/grants", one)
    assert r.status_code == 307
    location = r.headers["Location"]
    assert location.startswith(geo.caches["eu"] + "/v2/geo/grants/blobs/" + one + "?grant=")
    assert sha256(httpx.get(location, verify=geo.verify).content) == one
    # The same grant for another digest, or tampered, or missing: refused by the cache.
    for url in (location.replace(one, other), location[:-3] + "abc", location.split("?")[0]):
        r = httpx.get(url, verify=geo.verify)
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED", url
    # Expired, or signed by a key that is not the cluster's.
    key = Path(pki.TlsFiles.under(os.path.join(geo.data, "replica-0")).ca_key).read_bytes()
    expired = grants.GrantSigner(key).issue("ahab", "geo/grants", one, "eu", now=time.time() - 3600)
    forged = grants.GrantSigner(pki.create_ca("Mallory")[1]).issue("ahab", "geo/grants", one, "eu")
    for grant in (expired, forged):
        r = httpx.get(
            f"{geo.caches['eu']}/v2/geo/grants/blobs/{one}",
            params={"grant": grant},
            verify=geo.verify,
        )
        assert r.status_code == 401
        # A user without pull permission gets the error, never a redirect.
    r = _redirect(geo, "nobody", "geo/grants", one)
    assert r.status_code == 401 and "insufficient_scope" in r.headers["WWW-Authenticate"]
    # An unknown blob is a 404 from the cluster, not a redirect.
    assert _redirect(geo, "ahab", "geo/grants", sha256(b"nothing")).status_code == 404


def test_a_client_that_does_not_follow_redirects_is_served_directly(geo, tmp_path) -> None:
    digest = push_blob(geo, "geo/curl", os.urandom(70000))
    token = httpx.get(
        geo.url + "/auth/token",
        auth=("ahab", PASSWORD),
        verify=geo.verify,
        params={"scope": "repository:geo/curl:pull"},
    ).json()["token"]
    out = tmp_path / "blob"
    code = run(
        "curl",
        "-s",
        "--cacert",
        geo.ca,
        "-H",
        f"Authorization: Bearer {token}",
        "-o",
        str(out),
        "-w",
        "%{http_code}",
        f"{geo.url}/v2/geo/curl/blobs/{digest}",
    )
    assert code == "200" and sha256(out.read_bytes()) == digest  # curl without -L: no 307
    assert _redirect(geo, "ahab", "geo/curl", digest).status_code == 307


def test_twenty_concurrent_cold_pulls_cause_one_upstream_fetch(geo) -> None:
    digest = push_blob(geo, "geo/cold", os.urandom(3 * MIB))
    fetches = metric(geo.caches["eu"], "qreg_cache_upstream_fetches_total", geo.verify)

    def pull(_: int) -> str:
        r = _redirect(geo, "ahab", "geo/cold", digest)
        assert r.status_code == 307
        return sha256(httpx.get(r.headers["Location"], verify=geo.verify, timeout=60).content)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        assert set(pool.map(pull, range(20))) == {digest}
    assert metric(geo.caches["eu"], "qreg_cache_upstream_fetches_total", geo.verify) == fetches + 1


def _cache_seen_up(cluster: LocalCluster) -> bool | None:
    listed = httpx.get(
        cluster.url + "/api/v0/content_caches", auth=cluster.auth, verify=cluster.verify
    ).json()["content_caches"]
    return next(c["up"] for c in listed if c["name"] == "eu")


def _wait_seen(cluster: LocalCluster, up: bool) -> None:
    deadline = time.monotonic() + 30
    while _cache_seen_up(cluster) is not up:
        assert time.monotonic() < deadline, (
            f"the cluster never saw the cache {'up' if up else 'down'}"
        )
        time.sleep(0.2)


def test_a_cache_seen_down_is_skipped(geo) -> None:
    digest = push_blob(geo, "geo/down", os.urandom(5000))
    pid = httpx.get(geo.caches["eu"] + "/health", verify=geo.verify).json()["pid"]
    os.kill(pid, signal.SIGSTOP)  # it stops answering its health checks
    try:
        _wait_seen(geo, False)
        r = _redirect(geo, "ahab", "geo/down", digest)
        assert r.status_code == 200 and sha256(r.content) == digest
    finally:
        os.kill(pid, signal.SIGCONT)
    _wait_seen(geo, True)
    assert _redirect(geo, "ahab", "geo/down", digest).status_code == 307


def test_the_disk_limit_holds_and_the_cache_serves_without_the_cluster(geo) -> None:
    cache = geo.caches["eu"]
    digests = [push_blob(geo, "geo/stream", os.urandom(2 * MIB + n)) for n in range(10)]
    for digest in digests:  # 20 MiB through a 12 MiB cache
        r = _redirect(geo, "ahab", "geo/stream", digest)
        assert sha256(httpx.get(r.headers["Location"], verify=geo.verify).content) == digest
        assert metric(cache, "qreg_cache_disk_bytes", geo.verify) <= 12 * MIB
    assert metric(cache, "qreg_cache_evictions", geo.verify) > 0
    last = digests[-1]
    location = _redirect(geo, "ahab", "geo/stream", last).headers["Location"]
    geo.sigkill(0)  # the whole cluster (one replica) is gone
    r = httpx.get(location, verify=geo.verify, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100
    assert sha256(httpx.get(location, verify=geo.verify).content) == last
    # An evicted blob, with a genuine grant (signed as a replica would): nobody upstream.
    first = digests[0]
    files = pki.TlsFiles.under(os.path.join(geo.data, "replica-0"))
    grant = grants.GrantSigner(Path(files.ca_key).read_bytes()).issue(
        "ahab", "geo/stream", first, "eu"
    )
    r = httpx.get(
        f"{cache}/v2/geo/stream/blobs/{first}", params={"grant": grant}, verify=geo.verify
    )
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
