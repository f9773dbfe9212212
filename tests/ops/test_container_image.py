"""The Dockerfile, built and run: a three-replica cluster of containers (host
networking, one loopback address each) made the way the README's runbook makes one
(install, then join with a token read from a mounted file), a push and pulls through
it, a container killed and a pull through the survivors. The image runs as a non-root
user, keeps its state under /data and reports its health."""

from __future__ import annotations

import os
import shutil
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients.dockerd import Docker
from tests.clients.tools import skopeo
from tests.cluster import free_port_block
from tests.images import image_layout
from tests.ops.conftest import IMAGE

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADDRESSES = ("127.0.0.21", "127.0.0.22", "127.0.0.23")
UID = 10001  # the image's qreg user
# The image's own HEALTHCHECK command, run every 2 s rather than 10: docker calls a
# container healthy only after a first check passes, an interval after it starts.
HEALTH = "--health-interval=2s"


@pytest.fixture(scope="module")
def docker(image_docker: Docker) -> Docker:
    return image_docker


def qreg(docker: Docker, data: str, *args: str, mounts: tuple[str, ...] = ()) -> str:
    """A qreg command in a throwaway container of the image (its entrypoint passes it on)."""
    volumes = [f"--volume={data}:/data", *(f"--volume={m}" for m in mounts)]
    return str(docker.run("run", "--rm", "--network=host", *volumes, IMAGE, *args).stdout)


def serve(docker: Docker, name: str, data: str) -> None:
    docker.run(
        "run", "--detach", f"--name={name}", "--network=host", f"--volume={data}:/data", HEALTH,
        IMAGE, "serve", "--config", "/data/replica.toml",
    )  # fmt: skip


def wait_healthy(docker: Docker, name: str, timeout: float = 120.0) -> float:
    """Seconds until docker reports the container healthy (its HEALTHCHECK)."""
    started = time.monotonic()
    while True:
        state = docker.run("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        if state == "healthy":
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, (
            f"{name} is {state}: " + docker.run("logs", "--tail=30", name, check=False).stderr
        )
        time.sleep(0.5)


@pytest.fixture
def containers(docker: Docker) -> Iterator[None]:
    yield
    for n in range(3):
        docker.run("rm", "--force", f"replica-{n}", check=False)


def test_a_cluster_of_three_containers(docker: Docker, containers, tmp_path) -> None:
    port = free_port_block()
    homes = []
    for n in range(3):
        home = tmp_path / f"h{n}"
        home.mkdir()
        os.chown(home, UID, UID)  # the volume belongs to the image's non-root user
        homes.append(str(home))
    urls = [f"https://{a}:{port}" for a in ADDRESSES]

    qreg(
        docker, homes[0], "install", "--data", "/data", "--host", ADDRESSES[0],
        "--port", str(port), "--secrets-file", "/data/first-run-secrets.txt",
    )  # fmt: skip
    started = time.monotonic()
    serve(docker, "replica-0", homes[0])
    ready = wait_healthy(docker, "replica-0")
    first_ready_s = time.monotonic() - started
    with open(os.path.join(homes[0], "first-run-secrets.txt")) as f:
        secrets = f.read()
    password = secrets.split("admin password: ", 1)[1].split()[0]
    ca = os.path.join(homes[0], "tls", "ca.crt")

    for n in (1, 2):
        # On a member, as an operator would: in its running container (with vfs, every
        # new container is a copy of the image's whole filesystem).
        token = docker.run(
            "exec", "replica-0", "qreg", "join-token", "--config", "/data/replica.toml"
        ).stdout.strip()
        token_file = tmp_path / f"join-token-{n}"
        token_file.write_text(token + "\n")
        os.chown(token_file, UID, UID)
        os.chmod(token_file, 0o600)
        qreg(
            docker, homes[n], "join", "--existing", urls[0],
            "--token-file", "/run/secrets/join-token", "--replica-id", f"replica-{n}",
            "--data", "/data", "--host", ADDRESSES[n], "--port", str(port), "--no-start",
            mounts=(f"{token_file}:/run/secrets/join-token:ro",),
        )  # fmt: skip
        serve(docker, f"replica-{n}", homes[n])
        wait_healthy(docker, f"replica-{n}")

    # What the image promises: a non-root user, everything under /data.
    assert docker.run("exec", "replica-1", "id", "-u").stdout.strip() == str(UID)
    assert os.path.isfile(os.path.join(homes[1], "replica.toml"))
    assert os.path.isdir(os.path.join(homes[1], "metadata"))
    inspected = docker.run("inspect", "--format", "{{json .Config.Cmd}}", "replica-1").stdout
    assert "token" not in inspected

    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca, certs / "ca.crt")
    layout, manifest = image_layout(str(tmp_path / "layout"), "containers")
    creds = f"admin:{password}"
    skopeo(
        "copy", "--dest-cert-dir", str(certs), "--dest-creds", creds,
        f"oci:{layout}:latest", f"docker://{ADDRESSES[0]}:{port}/admin/app:1",
    )  # fmt: skip

    def pull(n: int, into: str) -> None:
        skopeo(
            "copy", "--src-cert-dir", str(certs), "--src-creds", creds,
            f"docker://{ADDRESSES[n]}:{port}/admin/app:1", f"dir:{tmp_path / into}",
        )  # fmt: skip

    pull(1, "from-1")
    docker.run("kill", "replica-0")
    deadline = time.monotonic() + 30
    while True:  # the survivors elect a leader; reads go on meanwhile or soon after
        try:
            pull(2, "from-2")
            break
        except AssertionError:
            assert time.monotonic() < deadline
            time.sleep(1)
    with open(tmp_path / "from-2" / "manifest.json", "rb") as f:
        assert f.read() == manifest.data
    health = httpx.get(urls[1] + "/health", verify=ssl.create_default_context(cafile=ca)).json()
    assert health["has_quorum"]

    size = int(docker.run("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print(
        f"\nimage {size / 1e6:.0f} MB (Debian minbase base), built in "
        f"{docker.build_seconds:.0f} s; docker run to healthy {ready:.1f} s "  # type: ignore[attr-defined]
        f"(first replica, {first_ready_s:.1f} s with the run itself)"
    )


@pytest.fixture
def first_run(docker: Docker) -> Iterator[str]:
    docker.run("network", "create", "qreg-first-run")
    yield "first-run"
    docker.run("rm", "--force", "first-run", check=False)
    docker.run("network", "rm", "qreg-first-run", check=False)
    docker.run("volume", "rm", "qreg-first-run", check=False)


def test_a_first_run_creates_a_cluster_of_one_that_survives_a_restart(
    docker: Docker, first_run: str, tmp_path
) -> None:
    """`docker run -v qreg:/data -p PORT:5000 IMAGE`, as the Dockerfile's header says:
    the entrypoint installs a cluster of one in the volume, keeps the admin password
    out of the log, and a restart reuses it all."""
    port = free_port_block()
    docker.run(
        "run", "--detach", f"--name={first_run}", "--network=qreg-first-run", HEALTH,
        f"--publish=127.0.0.1:{port}:5000", "--volume=qreg-first-run:/data",
        "--env=QREG_SAN=127.0.0.1",
        f"--env=QREG_HTTP_PUBLIC_URL=https://127.0.0.1:{port}",  # the port clients use
        IMAGE,
    )  # fmt: skip
    wait_healthy(docker, first_run)
    secrets = docker.run("exec", first_run, "cat", "/data/first-run-secrets.txt").stdout
    password = secrets.split("admin password: ", 1)[1].split()[0]
    logs = docker.run("logs", first_run)
    assert password not in logs.stdout + logs.stderr
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_text(docker.run("exec", first_run, "cat", "/data/tls/ca.crt").stdout)
    layout, manifest = image_layout(str(tmp_path / "layout"), "first-run")
    registry = f"127.0.0.1:{port}"
    skopeo(
        "copy", "--dest-cert-dir", str(certs), "--dest-creds", f"admin:{password}",
        f"oci:{layout}:latest", f"docker://{registry}/admin/app:1",
    )  # fmt: skip
    docker.run("restart", first_run)
    wait_healthy(docker, first_run)
    skopeo(
        "copy", "--src-cert-dir", str(certs), "--src-creds", f"admin:{password}",
        f"docker://{registry}/admin/app:1", f"dir:{tmp_path / 'pulled'}",
    )  # fmt: skip
    with open(tmp_path / "pulled" / "manifest.json", "rb") as f:
        assert f.read() == manifest.data
