"""The real docker client against three replicas (plain HTTP: dockerd reads registry CAs
only from /etc/docker/certs.d, which a test must not touch): login through the token
flow, push to one replica and pull from another, a multi-platform index, a refusal as
docker prints it, logout. dockerd runs with its own data root, socket and pid file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import multi_platform_layout

pytestmark = pytest.mark.slow

PASSWORD = "reader password 1"


class Docker:
    def __init__(self, root: str, registries: list[str]) -> None:
        self.root = root
        self.socket = os.path.join(root, "docker.sock")
        self.env = {**os.environ, "DOCKER_CONFIG": os.path.join(root, "config")}
        os.makedirs(self.env["DOCKER_CONFIG"], exist_ok=True)
        insecure = [f"--insecure-registry={r}" for r in registries]
        self.log = open(os.path.join(root, "dockerd.log"), "wb")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "--storage-driver=vfs",
                f"--data-root={root}/data",
                f"--exec-root={root}/exec",
                f"--host=unix://{self.socket}",
                f"--pidfile={root}/docker.pid",
                "--iptables=false",
                "--bridge=none",
                *insecure,
            ],
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while self.run("version", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.skip("dockerd cannot run here: " + open(self.log.name).read()[-500:])
            time.sleep(0.3)

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["docker", f"--host=unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=stdin,
            timeout=180,
        )
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Docker]]:
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is not installed; the test command installs docker.io")
    base = tmp_path_factory.mktemp("docker")
    cluster = LocalCluster(str(base / "cluster"), replicas=3).start()
    docker = Docker(str(base / "docker"), [u.split("://")[1] for u in cluster.urls])
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
    assert httpx.get(cluster.urls[0] + "/v2/").status_code == 401
