"""A replica in this process: create_app over a one-node Raft in a temp directory,
driven through Starlette's TestClient (which runs the lifespan). Seconds, not processes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from starlette.testclient import TestClient

from replica import pki
from replica.app import create_app
from replica.config import load
from tests.cluster import free_port_block


@contextlib.contextmanager
def replica(data_dir: str, **overrides: object) -> Iterator[TestClient]:
    """An open registry (no sign-in) unless `auth_enabled=True` is given."""
    os.makedirs(data_dir, exist_ok=True)
    files = pki.TlsFiles.under(data_dir)
    if not os.path.isfile(files.ca):  # the cluster CA and this replica's certificate
        ca_cert, ca_key = pki.create_ca()
        pki.set_up_replica(files, ca_cert, ca_key, "replica-0", ["127.0.0.1"])
    settings: dict[str, object] = {
        "replica_id": "replica-0",
        "data_dir": data_dir,
        "raft_address": f"127.0.0.1:{free_port_block()}",
        "raft_secret": "an in-process test secret",
        "raft_unsafe_skip_fsync": True,
        "http_insecure": True,
        "auth_enabled": False,
        "scrub_interval_s": 0.0,
        "state_verify_interval_s": 0.0,
    }
    settings.update(overrides)
    config = load(environ={}, **settings)
    with TestClient(create_app(config), base_url="http://testserver") as client:
        yield client
