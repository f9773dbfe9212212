from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.cluster import LocalCluster


@pytest.fixture(scope="session", autouse=True)
def client_credentials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One auth file for skopeo, podman and oras: every test cluster adds its admin."""
    directory = tmp_path_factory.mktemp("client-auth")
    path = directory / "config.json"
    path.write_text('{"auths": {}}')
    saved = {k: os.environ.get(k) for k in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG")}
    os.environ["REGISTRY_AUTH_FILE"] = str(path)
    os.environ["DOCKER_CONFIG"] = str(directory)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One single-replica registry shared by the tests that do not restart it."""
    cluster = LocalCluster(str(tmp_path_factory.mktemp("registry"))).start()
    yield cluster
    cluster.stop()
