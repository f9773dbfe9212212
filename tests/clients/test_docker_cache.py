"""The real docker client and a geographic cache: a user whose profile names the cache
pulls through it (dockerd follows the replica's 307 to the cache, which has its own
certificate from the cluster CA), and `docker login` keeps a refresh token rather than
the password."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.caches.common import metric
from tests.clients.dockerd import Docker
from tests.cluster import LocalCluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Docker]]:
    base = tmp_path_factory.mktemp("docker-cache")
    cluster = LocalCluster(str(base / "cluster"), tls=True, caches=("eu",)).start()
    try:
        r = httpx.post(
            cluster.url + "/api/v0/content_caches/eu/users",
            auth=("admin", cluster.admin_password),
            verify=cluster.verify,
            json={"users": ["admin"]},
        )
        assert r.status_code == 200, r.text
        hosts = [cluster.host, cluster.caches["eu"].split("://")[1]]
        docker = Docker(str(base / "docker"), trusted_cas={h: cluster.ca for h in hosts})
    except BaseException:
        cluster.stop()
        raise
    try:
        yield cluster, docker
    finally:
        docker.stop()
        cluster.stop()


def test_a_user_of_a_cache_pulls_through_it_with_docker(setup, tmp_path) -> None:
    cluster, docker = setup
    image = f"{cluster.host}/admin/cached:1"
    login = docker.run(
        "login", "-u", "admin", "--password-stdin", cluster.host, stdin=cluster.admin_password
    )
    assert "Login Succeeded" in login.stdout
    with open(os.path.join(docker.config, "config.json")) as f:
        stored = json.load(f)["auths"][cluster.host]
    # docker asked for offline access: it keeps a refresh token, never the password.
    assert stored.get("identitytoken") and cluster.admin_password not in json.dumps(stored)

    docker.import_tar({"srv/data": "x" * 300_000}, image, str(tmp_path / "root"))
    docker.run("push", image)
    docker.run("rmi", image)
    cache = cluster.caches["eu"]
    redirects = metric(cluster.url, "qreg_cache_redirects_total", cluster.verify)
    misses = metric(cache, "qreg_cache_misses_total", cluster.verify)
    docker.run("pull", image)  # through the refresh token, and through the cache
    assert metric(cluster.url, "qreg_cache_redirects_total", cluster.verify) > redirects
    assert metric(cache, "qreg_cache_misses_total", cluster.verify) > misses
    docker.run("rmi", image)
    hits = metric(cache, "qreg_cache_hits_total", cluster.verify)
    docker.run("pull", image)
    assert metric(cache, "qreg_cache_hits_total", cluster.verify) > hits  # now from its disk
