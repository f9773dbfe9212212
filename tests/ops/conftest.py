"""One dockerd for the tests that build the Dockerfile (the container image test and
the compose examples): Debian's base imported and the image built once, since a build
on vfs takes minutes; the compose examples' `up --build` then finds every layer in
the cache."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.clients.dockerd import Docker
from tests.ops.container_base import base_tar

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = "qreg-base:bookworm"
IMAGE = "quorum-registry:test"


@pytest.fixture(scope="session")
def image_docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    tar = base_tar()
    running = Docker(str(tmp_path_factory.mktemp("image-dockerd")))
    try:
        with open(tar, "rb") as f:
            subprocess.run(
                ["docker", f"--host=unix://{running.socket}", "import", "-", BASE],
                stdin=f, env=running.env, check=True, capture_output=True,
            )  # fmt: skip
        started = time.monotonic()
        running.run(
            "build",
            "--network=host",  # pip reaches PyPI; dockerd here has no bridge
            f"--build-arg=BASE={BASE}",
            f"--tag={IMAGE}",
            REPO,
            timeout=900,  # vfs copies the filesystem at every step: minutes on a slow disk
        )
        running.build_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        yield running
    finally:
        running.stop()
