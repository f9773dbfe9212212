"""Running one replica: uvicorn around `create_app`, stopped cleanly by SIGINT or SIGTERM."""

from __future__ import annotations

import os

import uvicorn
from starlette.applications import Starlette

from replica import data_lock, logs
from replica.app import create_app
from replica.config import ReplicaConfig
from replica.http_protocol import with_header_deadline
from replica.tls_reload import ReloadingServer


def serve(config: ReplicaConfig) -> None:
    # Everything a replica writes (metadata, journal, blobs, backups) is its own: password
    # hashes and private images are no one else's business on a shared host.
    os.umask(0o077)
    logs.setup(config.log_level)
    config.check_raft_secret()
    config.check_tls_files()
    held = data_lock.lock(config.data_dir)  # noqa: F841 - held for the process's life
    secure = not config.http_insecure
    cert = (config.tls_public_cert or config.tls_cert) if secure else None
    key = (config.tls_public_key or config.tls_key) if secure else None
    app = create_app(config)
    server = ReloadingServer(
        uvicorn.Config(
            app,
            host=config.http_host,
            port=config.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="uvloop",
            http=with_header_deadline(config.http_header_timeout_s),
            limit_concurrency=config.http_max_connections,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=10,
            ssl_certfile=cert,
            ssl_keyfile=key,
        ),
        cert,
        key,
        client_cas=lambda: trusted_client_cas(app),
    )
    server.run()


def trusted_client_cas(app: Starlette) -> list[str] | None:
    """The PEMs of the cluster's trusted client CAs (None before the replica is ready)."""
    replica = getattr(app.state, "context", None)
    if replica is None or replica.auth is None:
        return None
    return [ca.pem for ca in replica.auth.settings().client_cas]
