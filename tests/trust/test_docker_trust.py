"""Docker Content Trust against three replicas over HTTPS, with the real docker CLI:
without a daemon (key load, a signer whose key comes from a certificate, inspect,
revoke) and with a dockerd of the test's own (DOCKER_CONTENT_TRUST=1 push signs, a
trusted pull resolves the tag through our trust data, an unsigned tag is refused by
the client), and the repository's signed-only policy refusing an unsigned tag to
clients that do not check trust (skopeo, plain docker pull)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.clients.dockerd import Docker
from tests.cluster import LocalCluster
from tests.images import image_layout
from tests.trust.signers import DOCKER_PASSPHRASES, Notary, signer_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(str(tmp_path_factory.mktemp("dct") / "c"), replicas=3, tls=True)
    started.start()
    try:
        yield started
    finally:
        started.stop()


class DockerCli:
    """The docker CLI with a config directory of its own and no daemon."""

    def __init__(self, config: str, cluster: LocalCluster) -> None:
        self.config = config
        for url in cluster.urls:
            tls = os.path.join(config, "tls", url.split("://")[1])
            os.makedirs(tls, exist_ok=True)
            shutil.copy(cluster.ca, os.path.join(tls, "ca.crt"))
        self.host = f"unix://{config}/no-daemon.sock"

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> Any:
        done = subprocess.run(
            ["docker", f"--host={self.host}", *args],
            capture_output=True,
            text=True,
            input=stdin,
            env={**os.environ, **DOCKER_PASSPHRASES, "DOCKER_CONFIG": self.config},
            timeout=120,
        )
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done


def copy(cluster: LocalCluster, tmp_path, source: str, destination: str) -> Any:
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(cluster.ca, certs / "ca.crt")
    return subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--src-cert-dir",
            str(certs),
            "--dest-cert-dir",
            str(certs),
            "--src-creds",
            f"admin:{cluster.admin_password}",
            "--dest-creds",
            f"admin:{cluster.admin_password}",
            source,
            destination,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def signed_only(cluster: LocalCluster, repository: str, signers: list[str]) -> None:
    with cluster.client() as admin:
        policy = admin.get(f"/api/v0/repositories/{repository}/policy").json()
        policy["signing"] = {"signed_only": True, "accepted_signers": signers}
        r = admin.put(f"/api/v0/repositories/{repository}/policy", json=policy)
        assert r.status_code == 200, r.text


def test_docker_trust_without_a_daemon(cluster, tmp_path) -> None:
    gun = f"{cluster.host}/admin/signed"
    docker = DockerCli(str(tmp_path / "docker"), cluster)
    docker.run(
        "login", "-u", "admin", "--password-stdin", cluster.host, stdin=cluster.admin_password
    )
    key, cert = signer_files(str(tmp_path), "alice")
    docker.run("trust", "key", "load", key, "--name", "alice")
    docker.run("trust", "signer", "add", "--key", cert, "alice", gun)

    layout, manifest = image_layout(str(tmp_path / "layout"), "dct-no-daemon")
    done = copy(cluster, tmp_path, f"oci:{layout}:latest", f"docker://{gun}:v1")
    assert done.returncode == 0, done.stderr
    # alice signs v1 with notary over docker's own trust directory (her key is there),
    # into targets/releases and her own role, as `docker trust sign` does.
    alice = Notary(
        str(tmp_path / "notary"),
        cluster.urls[1],
        cluster.ca,
        "admin",
        cluster.admin_password,
        trust_dir=os.path.join(docker.config, "trust"),
    )
    hex_digest = manifest.digest.split(":", 1)[1]
    size = str(len(manifest.data))
    for role in ("targets/releases", "targets/alice"):  # notary keeps one change per name
        alice.run("addhash", gun, "v1", size, "--sha256", hex_digest, "-r", role)
        alice.run("publish", gun)

    (inspected,) = json.loads(docker.run("trust", "inspect", gun).stdout)
    assert [s["Name"] for s in inspected["Signers"]] == ["alice"]
    assert inspected["SignedTags"] == [
        {"SignedTag": "v1", "Digest": hex_digest, "Signers": ["alice"]}
    ]
    with cluster.client(2) as admin:
        tag = admin.get("/api/v0/repositories/admin/signed/tags/v1").json()
    assert tag["signed"] and tag["signers"] == ["targets/alice", "targets/releases"]

    # The policy: only alice's signatures count; an unsigned tag is refused to skopeo.
    signed_only(cluster, "admin/signed", ["alice"])
    done = copy(cluster, tmp_path, f"docker://{gun}:v1", f"dir:{tmp_path / 'pulled'}")
    assert done.returncode == 0, done.stderr
    done = copy(cluster, tmp_path, f"oci:{layout}:latest", f"docker://{gun}:unsigned")
    assert done.returncode == 0, done.stderr
    refused = copy(cluster, tmp_path, f"docker://{gun}:unsigned", f"dir:{tmp_path / 'refused'}")
    assert refused.returncode != 0
    assert "accepts only signed images" in refused.stderr, refused.stderr

    # Revoking the signature makes v1 unsigned again, for the registry too.
    docker.run("trust", "revoke", "--yes", f"{gun}:v1")
    again = copy(cluster, tmp_path, f"docker://{gun}:v1", f"dir:{tmp_path / 'revoked'}")
    assert again.returncode != 0 and "no content-trust signature" in again.stderr


@pytest.fixture(scope="module")
def dockerd(cluster, tmp_path_factory) -> Iterator[Docker]:
    hosts = [u.split("://")[1] for u in cluster.urls]
    docker = Docker(
        str(tmp_path_factory.mktemp("dockerd")), trusted_cas={h: cluster.ca for h in hosts}
    )
    docker.env.update(DOCKER_PASSPHRASES)
    try:
        yield docker
    finally:
        docker.stop()


def test_content_trust_push_and_pull_through_dockerd(cluster, dockerd, tmp_path) -> None:
    host = cluster.host
    image = f"{host}/admin/dct"
    dockerd.run("login", "-u", "admin", "--password-stdin", host, stdin=cluster.admin_password)
    dockerd.import_tar({"etc/motd": "signed by docker\n"}, f"{image}:1", str(tmp_path / "one"))
    trusted = {"DOCKER_CONTENT_TRUST": "1"}
    pushed = dockerd.run("push", f"{image}:1", env=trusted)
    assert "Signing and pushing trust metadata" in pushed.stdout + pushed.stderr

    (inspected,) = json.loads(dockerd.run("trust", "inspect", image).stdout)
    (signed,) = inspected["SignedTags"]
    assert signed["SignedTag"] == "1"
    with cluster.client(1) as admin:
        tag = admin.get("/api/v0/repositories/admin/dct/tags/1").json()
    assert tag["signed"] and tag["digest"] == "sha256:" + signed["Digest"]

    dockerd.run("rmi", f"{image}:1")
    pulled = dockerd.run("pull", f"{image}:1", env=trusted)
    assert f"{image}:1@sha256:{signed['Digest']}" in pulled.stdout  # resolved through trust

    dockerd.import_tar({"etc/motd": "not signed\n"}, f"{image}:unsigned", str(tmp_path / "two"))
    dockerd.run("push", f"{image}:unsigned")
    dockerd.run("rmi", f"{image}:unsigned")
    refused = dockerd.run("pull", f"{image}:unsigned", env=trusted, check=False)
    assert refused.returncode != 0
    assert "trust data" in refused.stderr.lower() or "not signed" in refused.stderr.lower()

    # With the policy on, the registry itself refuses the unsigned tag to plain pulls.
    signed_only(cluster, "admin/dct", [])
    plain = dockerd.run("pull", f"{image}:unsigned", check=False)
    assert plain.returncode != 0 and "accepts only signed images" in plain.stderr, plain.stderr
    dockerd.run("rmi", f"{image}:1")
    dockerd.run("pull", f"{image}:1", env=trusted)  # signed: still served
