"""The real docker client against three replicas over HTTPS, trusting the cluster CA
from certs.d (dockerd.py: in a private mount namespace, not the machine's): login
through the token flow, push to one replica and pull from another, a multi-platform
index, a pull through a replica that lost the layer (streamed from a holder), a
refusal as docker prints it, logout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients.dockerd import Docker
from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import multi_platform_layout

pytestmark = pytest.mark.slow

PASSWORD = "reader password 1"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Docker]]:
    base = tmp_path_factory.mktemp("docker")
    cluster = LocalCluster(str(base / "cluster"), replicas=3, tls=True).start()
    hosts = [u.split("://")[1] for u in cluster.urls]
    try:
        docker = Docker(str(base / "docker"), trusted_cas={h: cluster.ca for h in hosts})
    except BaseException:
        cluster.stop()
        raise
    try:
        yield cluster, docker
    finally:
        docker.stop()
        cluster.stop()


def test_login_push_to_one_replica_pull_from_another_and_logout(setup, tmp_path) -> None:
    cluster, docker = setup
    first, second = (u.split("://")[1] for u in cluster.urls[:2])
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_text("pushed by docker\n")
    tar = subprocess.run(
        ["tar", "-C", str(root), "-c", "."], capture_output=True, check=True
    ).stdout
    imported = (
        subprocess.run(
            ["docker", f"--host=unix://{docker.socket}", "import", "-", "local/app:1"],
            input=tar,
            capture_output=True,
            env=docker.env,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    for host in (first, second):
        out = docker.run(
            "login", "-u", "admin", "--password-stdin", host, stdin=cluster.admin_password
        )
        assert "Login Succeeded" in out.stdout
    docker.run("tag", "local/app:1", f"{first}/admin/app:1")
    pushed = docker.run("push", f"{first}/admin/app:1").stdout
    assert "digest: sha256:" in pushed
    docker.run("rmi", f"{first}/admin/app:1", "local/app:1")
    docker.run("pull", f"{second}/admin/app:1")
    image = docker.run(
        "image", "inspect", "--format", "{{.Id}}", f"{second}/admin/app:1"
    ).stdout.strip()
    assert image == imported  # the same image, through another replica

    # A read-only user is refused a push, in docker's words.
    with cluster.client() as admin:
        r = admin.post(
            "/api/v0/accounts",
            json={"name": "reader", "password": PASSWORD, "global_role": "read-only"},
        )
        assert r.status_code == 201
    docker.run("login", "-u", "reader", "--password-stdin", second, stdin=PASSWORD)
    docker.run("tag", f"{second}/admin/app:1", f"{second}/admin/app:2")
    refused = docker.run("push", f"{second}/admin/app:2", check=False)
    assert refused.returncode != 0 and "denied" in refused.stderr.lower()
    docker.run("logout", second)
    docker.run("rmi", f"{second}/admin/app:1", f"{second}/admin/app:2")
    anonymous = docker.run("pull", f"{second}/admin/app:1", check=False)
    assert anonymous.returncode != 0
    assert "denied" in anonymous.stderr.lower() or "unauthorized" in anonymous.stderr.lower()


def test_a_multi_platform_index_pulls_the_machines_platform(setup, tmp_path) -> None:
    cluster, docker = setup
    host = cluster.urls[0].split("://")[1]
    layout, index = multi_platform_layout(str(tmp_path / "layout"), "docker-multi")
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{layout}:latest",
        f"docker://{host}/admin/multi:1",
    )
    docker.run("login", "-u", "admin", "--password-stdin", host, stdin=cluster.admin_password)
    docker.run("pull", f"{host}/admin/multi:1")
    arch = docker.run(
        "image", "inspect", "--format", "{{.Architecture}}", f"{host}/admin/multi:1"
    ).stdout.strip()
    assert arch == {"x86_64": "amd64", "aarch64": "arm64"}.get(
        os.uname().machine, os.uname().machine
    )
    digests = docker.run(
        "image", "inspect", "--format", "{{index .RepoDigests 0}}", f"{host}/admin/multi:1"
    ).stdout
    assert index.digest in digests  # docker names the index it pulled through
    assert httpx.get(cluster.urls[0] + "/v2/", verify=cluster.verify).status_code == 401


def test_a_replica_that_lost_the_layer_serves_docker_from_a_holder(setup, tmp_path) -> None:
    cluster, docker = setup
    first, third = (u.split("://")[1] for u in (cluster.urls[0], cluster.urls[2]))
    # Random text: the layer does not compress away, and is new to every replica.
    content = os.urandom(1_000_000).hex()
    imported = docker.import_tar({"srv/data.txt": content}, "local/lost:1", str(tmp_path / "root"))
    for host in (first, third):
        docker.run("login", "-u", "admin", "--password-stdin", host, stdin=cluster.admin_password)
    docker.run("tag", "local/lost:1", f"{first}/admin/lost:1")
    docker.run("push", f"{first}/admin/lost:1")
    with cluster.client() as admin:
        manifest = admin.get(
            "/v2/admin/lost/manifests/1",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        ).json()
    layer = manifest["layers"][0]["digest"].removeprefix("sha256:")
    held = os.path.join(cluster.data, "replica-2", "storage", "blobs", "sha256", layer[:2], layer)
    deadline = time.monotonic() + 20
    while not os.path.exists(held):  # the background copy reaches every replica
        assert time.monotonic() < deadline, "replica 2 never got its copy"
        time.sleep(0.1)
    os.unlink(held)  # replica 2 lost its copy of the layer
    docker.run("rmi", f"{first}/admin/lost:1", "local/lost:1")
    docker.run("pull", f"{third}/admin/lost:1")  # docker checks each layer's digest
    image = docker.run("image", "inspect", "--format", "{{.Id}}", f"{third}/admin/lost:1")
    assert image.stdout.strip() == imported
    with open(held, "rb") as f:  # fetched from a holder, verified, and kept
        assert hashlib.sha256(f.read()).hexdigest() == layer
