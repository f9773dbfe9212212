from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster import LocalCluster


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One single-replica registry shared by the tests that do not restart it."""
    cluster = LocalCluster(str(tmp_path_factory.mktemp("registry"))).start()
    yield cluster
    cluster.stop()
