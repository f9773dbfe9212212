"""Running one replica: uvicorn around `create_app`, stopped cleanly by SIGINT or SIGTERM."""

from __future__ import annotations

import uvicorn

from replica import logs
from replica.app import create_app
from replica.config import ReplicaConfig


def serve(config: ReplicaConfig) -> None:
    logs.setup(config.log_level)
    server = uvicorn.Server(uvicorn.Config(
        create_app(config), host=config.http_host, port=config.http_port,
        log_config=None, access_log=False, lifespan="on",
        loop="uvloop", http="httptools", timeout_graceful_shutdown=10,
    ))
    server.run()
