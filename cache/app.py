"""The cache node's HTTP server: blob GET and HEAD (with Range) for any repository,
each allowed by a grant from the cluster; /health and Prometheus /metrics; its latest
log lines for the cluster's Logs page (/_internal/logs, with a grant the cluster
signed for "_logs", which no repository can be named)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cache.access_log import AccessLog, note
from cache.config import CacheConfig
from cache.fetch import Fetcher, FlightResponse
from cache.store import BoundedStore
from replica import errors, logs
from replica.auth import grants
from replica.blobs.streams import FileRangeResponse
from replica.errors import API_HEADERS, RegistryError, Unauthorized, Unsupported
from replica.handlers.blobs import parse_range
from replica.names import check_digest, check_name
from replica.peers import trusting

_BLOB = re.compile(r"/v2/(.+)/blobs/([^/]+)")


class CacheMetrics:
    def __init__(self, store: BoundedStore) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.hits = Counter("qreg_cache_hits_total", "Blob requests served from disk", registry=r)
        self.misses = Counter("qreg_cache_misses_total", "Blob requests not on disk", registry=r)
        self.bytes_from_disk = Counter(
            "qreg_cache_bytes_from_disk_total", "Bytes served from the cache's disk", registry=r
        )
        self.bytes_from_upstream = Counter(
            "qreg_cache_bytes_from_upstream_total", "Bytes fetched from upstream", registry=r
        )
        self.upstream_fetches = Counter(
            "qreg_cache_upstream_fetches_total", "Blobs fetched from upstream", registry=r
        )
        self.upstream_errors = Counter(
            "qreg_cache_upstream_errors_total", "Failed upstream requests", registry=r
        )
        self.refused = Counter(
            "qreg_cache_refused_grants_total", "Requests without a valid grant", registry=r
        )
        evictions = Gauge("qreg_cache_evictions", "Blobs evicted since start", registry=r)
        evictions.set_function(lambda: store.evictions)
        used = Gauge("qreg_cache_disk_bytes", "Bytes of blobs on disk", registry=r)
        used.set_function(lambda: store.used)
        limit = Gauge("qreg_cache_disk_limit_bytes", "The disk budget", registry=r)
        limit.set(store.max_bytes)


def create_app(config: CacheConfig) -> Starlette:
    with open(config.ca, "rb") as f:
        verifier = grants.GrantVerifier(f.read())
    store = BoundedStore(config.data_dir, config.max_bytes)
    metrics = CacheMetrics(store)
    fetcher = Fetcher(store, config.upstreams, trusting(config.upstream_ca or config.ca), metrics)

    async def blob(request: Request) -> Any:
        m = _BLOB.fullmatch(request.url.path)
        if m is None:
            raise Unsupported("a cache serves blobs only: /v2/NAME/blobs/DIGEST", status=404)
        repository, digest = check_name(m.group(1)), m.group(2)
        check_digest(digest)
        grant = request.query_params.get("grant") or request.headers.get(grants.HEADER, "")
        try:
            note(request.scope, user=verifier.verify(grant, repository, digest, config.name).user)
        except grants.InvalidGrant as e:
            metrics.refused.inc()
            raise Unauthorized(f"a valid grant from the cluster is required: {e}") from None
        return await _serve(request, repository, digest, grant)

    async def _serve(request: Request, repository: str, digest: str, grant: str) -> Any:
        headers = {
            **API_HEADERS,
            "Docker-Content-Digest": digest,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "ETag": f'"{digest}"',
            "X-Qreg-Cache": config.name,
        }
        path = store.path(digest)
        if path is None and request.method == "HEAD":
            size = await fetcher.head(repository, digest, grant)
            return Response(status_code=200, headers={**headers, "Content-Length": str(size)})
        note(request.scope, source="disk" if path else "upstream")
        if path is None:
            metrics.misses.inc()
            flight = await fetcher.flight(repository, digest, grant)
            if not request.headers.get("range"):
                return FlightResponse(flight, headers, metrics.bytes_from_disk.inc)
            async with flight.changed:  # a range of a blob in flight: once it is whole
                await flight.changed.wait_for(lambda: flight.finished)
            path = store.path(digest)
            if path is None:
                raise Unsupported("the upstream transfer failed; try again", status=502)
        else:
            metrics.hits.inc()
        size = os.path.getsize(path)
        start, length, status = 0, size, 200
        if request.headers.get("range"):
            start, length = parse_range(request.headers["range"], size)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        if request.method == "HEAD":
            return Response(status_code=status, headers={**headers, "Content-Length": str(length)})
        metrics.bytes_from_disk.inc(length)
        return FileRangeResponse(path, start, length, status, headers)

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "name": config.name,
                "pid": os.getpid(),
                "used_bytes": store.used,
                "max_bytes": store.max_bytes,
                "blobs": len(store),
                "in_flight": len(fetcher.flights),
            }
        )

    async def recent_logs(request: Request) -> Response:
        try:
            grant = request.headers.get(grants.LOGS_GRANT_HEADER, "")
            verifier.verify(grant, grants.LOGS, grants.LOGS, config.name)
        except grants.InvalidGrant as e:
            raise Unauthorized(f"a grant from the cluster is needed: {e}") from None
        after = request.query_params.get("after", "0")
        kept = logs.recent()
        lines = kept.since(int(after)) if kept and after.isdigit() else []
        return JSONResponse({"lines": lines})

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")

    async def base(request: Request) -> Response:
        return JSONResponse({}, headers=API_HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await fetcher.close()

    app = Starlette(
        routes=[
            Route("/v2/", base, methods=["GET"]),
            Route("/v2/{rest:path}", blob, methods=["GET", "HEAD"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/_internal/logs", recent_logs, methods=["GET"]),
        ],
        middleware=[Middleware(AccessLog)],
        lifespan=lifespan,
        exception_handlers={RegistryError: errors.handle},
    )
    app.state.store = store
    app.state.metrics = metrics
    return app
