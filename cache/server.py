"""Running a cache node under uvicorn."""

from __future__ import annotations

import uvicorn

from cache.app import create_app
from cache.config import CacheConfig
from replica import logs


def serve(config: CacheConfig) -> None:
    logs.setup("info")
    tls = {} if config.insecure else {"ssl_certfile": config.cert, "ssl_keyfile": config.key}
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
            **tls,
        )
    ).run()
