"""Running a cache node under uvicorn."""

from __future__ import annotations

import uvicorn

from cache.app import create_app
from cache.config import CacheConfig
from replica import logs


def serve(config: CacheConfig) -> None:
    logs.setup("info")
    uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=10,
            ssl_certfile=None if config.insecure else config.cert,
            ssl_keyfile=None if config.insecure else config.key,
        )
    ).run()
