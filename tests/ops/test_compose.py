"""The compose examples, brought up by their READMEs' commands as written (with
Debian's docker-compose standing in for `docker compose`), on the container tests'
dockerd (tests/ops/conftest.py) with user-defined bridge networks: three replicas
behind haproxy (a push and a pull, then a replica killed and a pull again), and the
same with two geographic caches (a user of the eu cache pulls through it).

No image can be pulled here: the replicas' image is built from the Dockerfile on a
Debian base made with debootstrap (QREG_BASE), and `haproxy:2.8` is a stand-in built
from Debian's haproxy package, run as the official image runs it. The image is built
once for all container tests; the READMEs' `up --build` finds its layers cached."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.clients.dockerd import Docker
from tests.clients.tools import skopeo
from tests.cluster import free_port_block
from tests.images import image_layout
from tests.ops.conftest import BASE

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "compose admin password"
ORCA_PASSWORD = "orca pulls from eu"
HAPROXY = f"""FROM {BASE}
RUN apt-get update && apt-get install -y --no-install-recommends haproxy \\
    && rm -rf /var/lib/apt/lists/*
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
"""
# `docker compose` for the README's commands, where only docker-compose (v1) exists.
COMPOSE_SHIM = (
    'docker() { if [ "$1" = compose ]; then shift; docker-compose "$@"; '
    'else command docker "$@"; fi; }\n'
)
# What the files require to be set, for `kill` and `down` (which recreate nothing).
LATER = {"QREG_RAFT_SECRET": "-", "QREG_ADMIN_PASSWORD_HASH": "-"}


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, image_docker: Docker
) -> tuple[str, dict[str, str]]:
    """A copy of the repository (make-certs.sh writes into the examples) and the
    environment of a shell on this machine whose docker is the tests' dockerd."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed; the test command installs it")
    base = tmp_path_factory.mktemp("compose")
    repo = base / "repo"
    shutil.copytree(
        REPO,
        repo,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", ".*cache"),
    )
    (base / "home").mkdir()
    docker = image_docker
    env = {
        **docker.env,
        "DOCKER_HOST": f"unix://{docker.socket}",
        "HOME": str(base / "home"),  # qreg login keeps its session there
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        "PORT": str(free_port_block()),
        "QREG_BASE": BASE,
        "QREG_BUILD_NETWORK": "host",  # pip and apt reach the network; no default bridge
    }
    stand_in = base / "haproxy"
    stand_in.mkdir()
    (stand_in / "Dockerfile").write_text(HAPROXY)
    docker.run("build", "--network=host", "--tag=haproxy:2.8", str(stand_in))
    image_layout(str(repo / "cluster-examples" / "three-replicas" / "my-layout"), "compose")
    return str(repo), env


def readme_commands(example: str) -> str:
    with open(os.path.join(example, "README.md")) as f:
        return re.search(r"```sh\n(.*?)```", f.read(), re.S).group(1)  # type: ignore[union-attr]


def run_readme(example: str, env: dict[str, str], answers: list[str], wrap: str = "") -> str:
    """The README's commands in bash, as written, answering its password prompts."""
    script = COMPOSE_SHIM + "set -eu\n" + readme_commands(example)
    done = subprocess.run(
        ["bash", "-c", wrap + shlex.quote(script) if wrap else script],
        input="".join(a + "\n" for a in answers),
        cwd=example,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_three_replica_example_runs_as_its_readme_says(site, tmp_path) -> None:
    repo, env = site
    example = os.path.join(repo, "cluster-examples", "three-replicas")
    env = {**env, "COMPOSE_PROJECT_NAME": "qregexample"}
    compose = ["docker-compose"]
    try:
        run_readme(example, env, [PASSWORD])
        with open(os.path.join(example, "pulled", "manifest.json"), "rb") as f:
            pulled = f.read()

        # One replica down: haproxy stops sending to it, pulls go on through the others.
        subprocess.run([*compose, "kill", "replica-0"], cwd=example, env={**env, **LATER},
                       check=True, capture_output=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                skopeo(
                    "copy", "--src-cert-dir", os.path.join(example, "certs"),
                    "--src-creds", f"admin:{PASSWORD}",
                    f"docker://127.0.0.1:{env['PORT']}/team/app:1",
                    f"dir:{tmp_path / 'after-kill'}",
                )  # fmt: skip
                break
            except AssertionError:
                assert time.monotonic() < deadline, "no pull through the two survivors"
                time.sleep(2)
        with open(tmp_path / "after-kill" / "manifest.json", "rb") as f:
            assert f.read() == pulled
    finally:
        subprocess.run([*compose, "down", "--volumes"], cwd=example, env={**env, **LATER},
                       capture_output=True, timeout=120)  # fmt: skip


def test_the_geo_caches_example_runs_as_its_readme_says(site, tmp_path) -> None:
    repo, env = site
    example = os.path.join(repo, "cluster-examples", "geo-caches")
    env = {**env, "COMPOSE_PROJECT_NAME": "qreggeo"}
    compose = ["docker-compose", "-f", "../three-replicas/compose.yaml", "-f", "compose.yaml"]
    for port in (5443, 5444):  # the example's published ports, as its README gives them
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} is taken on this machine; the example publishes it")
    # The README's one-host trial puts the caches' names in /etc/hosts: here, in a
    # private mount namespace, so the machine's own file is left alone.
    hosts = tmp_path / "hosts"
    with open("/etc/hosts") as f:
        hosts.write_text(f.read() + "\n127.0.0.1 eu.registry.example.com ap.registry.example.com\n")
    wrap = (
        "exec unshare --mount --propagation private bash -c "
        + shlex.quote(f'mount --bind {shlex.quote(str(hosts))} /etc/hosts && exec bash -c "$0"')
        + " "
    )
    try:
        out = run_readme(example, env, [PASSWORD, ORCA_PASSWORD], wrap)
        layout = os.path.join(repo, "cluster-examples", "three-replicas", "my-layout")
        with open(os.path.join(layout, "index.json")) as f:
            manifest = re.search(r"sha256:[0-9a-f]{64}", f.read()).group(0)  # type: ignore[union-attr]
        pulled = subprocess.run(
            ["sha256sum", os.path.join(example, "pulled", "manifest.json")],
            capture_output=True, text=True, check=True,
        ).stdout.split()[0]  # fmt: skip
        assert "sha256:" + pulled == manifest
        # orca's blobs came through eu: each was a miss there, fetched from a replica.
        metrics = dict(
            line.rsplit(" ", 1) for line in out.splitlines() if line.startswith("qreg_cache_")
        )
        assert float(metrics["qreg_cache_misses_total"]) >= 2, out
        assert float(metrics["qreg_cache_bytes_from_upstream_total"]) > 0, out
        listed = out.splitlines()
        assert any(re.match(r"ap\s.*\sup \(", line) for line in listed), out
    finally:
        subprocess.run([*compose, "down", "--volumes"], cwd=example, env={**env, **LATER},
                       capture_output=True, timeout=120)  # fmt: skip
