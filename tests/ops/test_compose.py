"""The three-replica compose example, brought up by its README's commands as written
(with Debian's docker-compose standing in for `docker compose`), on a dockerd of the
test's own with a user-defined bridge network: a push and a pull through haproxy, then
a replica killed and a pull again.

No image can be pulled here: the replicas' image is built from the Dockerfile on a
Debian base made with debootstrap (QREG_BASE), and `haproxy:2.8` is a stand-in built
from Debian's haproxy package, run as the official image runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.clients.dockerd import Docker
from tests.clients.tools import skopeo
from tests.cluster import free_port_block
from tests.images import image_layout
from tests.ops.container_base import base_tar

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "compose admin password"
HAPROXY = """FROM qreg-base:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends haproxy \\
    && rm -rf /var/lib/apt/lists/*
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
"""
# `docker compose` for the README's commands, where only docker-compose (v1) exists.
COMPOSE_SHIM = (
    'docker() { if [ "$1" = compose ]; then shift; docker-compose "$@"; '
    'else command docker "$@"; fi; }\n'
)


def readme_commands(example: str) -> str:
    with open(os.path.join(example, "README.md")) as f:
        return re.search(r"```sh\n(.*?)```", f.read(), re.S).group(1)  # type: ignore[union-attr]


def test_the_three_replica_example_runs_as_its_readme_says(tmp_path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed; the test command installs it")
    repo = tmp_path / "repo"  # make-certs.sh writes into the example: a copy, not the tree
    shutil.copytree(
        REPO,
        repo,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", ".*cache"),
    )
    example = str(repo / "cluster-examples" / "three-replicas")
    docker = Docker(str(tmp_path / "dockerd"))
    env = {
        **docker.env,
        "DOCKER_HOST": f"unix://{docker.socket}",
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        "PORT": str(free_port_block()),
        "QREG_BASE": "qreg-base:bookworm",
        "QREG_BUILD_NETWORK": "host",  # pip and apt reach the network; no default bridge
        "COMPOSE_PROJECT_NAME": "qregexample",
    }
    compose = ["docker-compose"]
    # What the file requires to be set, for `kill` and `down` (which recreate nothing).
    later = {"QREG_RAFT_SECRET": "-", "QREG_ADMIN_PASSWORD_HASH": "-"}
    try:
        with open(base_tar(), "rb") as f:
            subprocess.run(
                ["docker", "import", "-", "qreg-base:bookworm"],
                stdin=f, env=env, check=True, capture_output=True,
            )  # fmt: skip
        stand_in = tmp_path / "haproxy"
        stand_in.mkdir()
        (stand_in / "Dockerfile").write_text(HAPROXY)
        docker.run("build", "--network=host", "--tag=haproxy:2.8", str(stand_in))
        image_layout(os.path.join(example, "my-layout"), "compose-example")

        script = COMPOSE_SHIM + "set -eu\n" + readme_commands(example)
        done = subprocess.run(
            ["bash", "-c", script],
            input=PASSWORD + "\n",
            cwd=example,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with open(os.path.join(example, "pulled", "manifest.json"), "rb") as f:
            pulled = f.read()

        # One replica down: haproxy stops sending to it, pulls go on through the others.
        subprocess.run([*compose, "kill", "replica-0"], cwd=example, env={**env, **later},
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
        subprocess.run([*compose, "down", "--volumes"], cwd=example, env={**env, **later},
                       capture_output=True, timeout=120)  # fmt: skip
        docker.stop()
