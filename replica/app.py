"""The replica's ASGI application: `create_app(config)`, no module-level state.

Repository names contain slashes, so /v2/ paths are matched here by a small table
of anchored patterns (the last `/blobs/`, `/manifests/`… wins, as the name
grammar allows those words as components) rather than by path converters.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import NoQuorum
from replica import cache_redirect, errors, upload_proxy
from replica.api import accounts as accounts_api
from replica.api import auth_settings as auth_settings_api
from replica.api import backup as backup_api
from replica.api import caches as caches_api
from replica.api import cluster as cluster_api
from replica.api import events as events_api
from replica.api import gc as gc_api
from replica.api import logs as logs_api
from replica.api import membership as membership_api
from replica.api import openapi, registry_openapi
from replica.api import policies as policies_api
from replica.api import repositories as repositories_api
from replica.api import scans as scans_api
from replica.api import state as state_api
from replica.api import tags as tags_api
from replica.api import webhooks as webhooks_api
from replica.assembly import running
from replica.auth import grants
from replica.auth.service import AuthService
from replica.blobs.streams import RECEIVED_KEY, FileRangeResponse
from replica.blobs.uploads import owner_of
from replica.config import ReplicaConfig
from replica.context import context
from replica.errors import (
    API_HEADERS,
    BlobUploadUnknown,
    Denied,
    NameInvalid,
    NotFound,
    RegistryError,
    Unavailable,
    Unknown,
    Unsupported,
)
from replica.handlers import blobs, catalog, manifests, referrers, tags, uploads
from replica.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from replica.metrics import Metrics
from replica.names import check_name
from replica.peers import require_internal
from replica.registry import UNCONFIRMED, Registry
from replica.removal import RemovedGuard
from replica.trust import http as trust_http
from replica.ui import pages as ui_pages

log = logging.getLogger("qreg.replica")

Handler = Callable[..., Awaitable[Any]]


async def _start_upload(registry: Registry, request: Request, name: str, session: str) -> Any:
    if session:
        raise Unsupported("POST starts an upload; it takes no session id")
    return await uploads.start(registry, request, name)


async def _no_session(registry: Registry, request: Request, name: str, session: str) -> Any:
    raise BlobUploadUnknown("an upload session id is required")


def _session(handler: Handler) -> Handler:
    async def call(registry: Registry, request: Request, name: str, session: str) -> Any:
        if not session:
            return await _no_session(registry, request, name, session)
        owner = owner_of(session)
        if owner and owner != registry.replica_id:
            try:
                return await upload_proxy.forward(registry, request, owner)
            except upload_proxy.OwnerUnreachable:
                if not registry.store.shared:
                    raise
                # Its bytes are in the shared store: the session goes on here.
        return await handler(registry, request, name, session)

    return call


_ROUTES: list[tuple[str, re.Pattern[str], dict[str, Handler]]] = [
    (
        "uploads",
        re.compile(r"/v2/(.+)/blobs/uploads(?:/([^/]*))?"),
        {
            "POST": _start_upload,
            "PATCH": _session(uploads.patch),
            "PUT": _session(uploads.put),
            "GET": _session(uploads.status),
            "DELETE": _session(uploads.cancel),
        },
    ),
    (
        "blobs",
        re.compile(r"/v2/(.+)/blobs/([^/]+)"),
        {"GET": blobs.get, "HEAD": blobs.get, "DELETE": blobs.delete},
    ),
    (
        "manifests",
        re.compile(r"/v2/(.+)/manifests/([^/]+)"),
        {
            "GET": manifests.get,
            "HEAD": manifests.get,
            "PUT": manifests.put,
            "DELETE": manifests.delete,
        },
    ),
    (
        "tags",
        re.compile(r"/v2/(.+)/tags/list()"),
        {"GET": lambda r, q, n, _: tags.list_tags(r, q, n)},
    ),
    ("referrers", re.compile(r"/v2/(.+)/referrers/([^/]+)"), {"GET": referrers.list_referrers}),
]


def _registry(request: Request) -> Registry:
    return context(request).registry


async def _dispatch(request: Request) -> Any:
    started = time.perf_counter()
    route = "unknown"
    UNCONFIRMED.set(False)
    try:
        response = await _route(request)
    except RegistryError as e:
        response = e.response(head_only=request.method == "HEAD")
    _mark_unconfirmed(response)
    metrics: Metrics = context(request).metrics
    route = request.scope.get(_ROUTE_KEY, route)
    metrics.observe(route, request.method, response.status_code, started)
    if isinstance(response, FileRangeResponse):
        metrics.blob_bytes_sent.inc(response.length)
    received = request.scope.get(RECEIVED_KEY)
    if received:
        metrics.blob_bytes_received.inc(received)
    return response


_ROUTE_KEY = "qreg.route"
_ACTIONS = {
    "GET": "pull",
    "HEAD": "pull",
    "POST": "push",
    "PUT": "push",
    "PATCH": "push",
    "DELETE": "delete",
}


async def _route(request: Request) -> Any:
    path = request.scope["path"]  # not request.url: parsing a URL per request shows in load
    if trust_http.matches(path):
        request.scope[_ROUTE_KEY] = "trust"
        return await trust_http.route(request)
    for route, pattern, methods in _ROUTES:
        m = pattern.fullmatch(path)
        if m is None:
            continue
        request.scope[_ROUTE_KEY] = route
        name = check_name(m.group(1))
        handler = methods.get(request.method)
        if handler is None:
            raise Unsupported(f"{request.method} is not supported here", status=405)
        auth: AuthService | None = context(request).auth
        registry = _registry(request)
        if (
            route == "blobs"
            and request.method in ("GET", "HEAD")
            and request.headers.get(grants.HEADER)
        ):
            _check_grant(request, name, m.group(2))  # a cache fetching a miss
        elif auth is not None:
            # Cancelling an upload is part of pushing; deleting content needs delete.
            action = "push" if route == "uploads" else _ACTIONS[request.method]
            auth.require(request, name, action)
        proxies = context(request).proxies
        proxy = proxies.proxy_of(name) if proxies is not None else None
        if proxies is not None and proxy is not None:  # no coroutine for other repositories
            await proxies.before(proxy, request.method, route, name, m.group(2) or "")
        if auth is not None and not request.headers.get(grants.HEADER):
            claims = getattr(request.state, "claims", None)
            if route == "blobs" and request.method == "GET" and claims is not None:
                moved = await cache_redirect.redirect(
                    request,
                    registry,
                    context(request).grant_signer,
                    context(request).cache_health,
                    claims.subject,
                    name,
                    m.group(2),
                )
                if moved is not None:
                    context(request).metrics.cache_redirects.inc()
                    return moved
        return await handler(registry, request, name, m.group(2) or "")
    raise NameInvalid(
        "no such endpoint or invalid repository name", status=404, detail={"path": path[:300]}
    )


def _check_grant(request: Request, repository: str, digest: str) -> None:
    verifier: grants.GrantVerifier | None = context(request).grant_verifier
    try:
        if verifier is None:
            raise grants.InvalidGrant("this replica has no cluster CA")
        verifier.verify(request.headers[grants.HEADER], repository, digest)
    except grants.InvalidGrant as e:
        raise Denied(f"invalid cache grant: {e}") from None


async def _base(request: Request) -> Response:
    auth: AuthService | None = context(request).auth
    if auth is not None and auth.enabled:
        try:
            auth.claims(request)  # any valid token, anonymous included
        except RegistryError as e:
            return e.response(head_only=request.method == "HEAD")
    return JSONResponse({}, headers=API_HEADERS)


def _mark_unconfirmed(response: Any) -> None:
    """Degraded mode, said out loud: served from local state without a quorum's word."""
    if UNCONFIRMED.get() and isinstance(response, Response):
        response.headers["Qreg-Read"] = "unconfirmed"


async def _catalog(request: Request) -> Any:
    UNCONFIRMED.set(False)
    response: Response
    try:
        response = await catalog.list_repositories(
            _registry(request), request, context(request).auth
        )
    except RegistryError as e:
        response = e.response()
    _mark_unconfirmed(response)
    return response


async def _token_get(request: Request) -> Response:
    auth: AuthService | None = context(request).auth
    if auth is None:
        raise NotFound("no token service: this replica has no cluster CA key")
    return await auth.token_get(request)


async def _token_post(request: Request) -> Response:
    auth: AuthService | None = context(request).auth
    if auth is None:
        return await _token_get(request)
    return await auth.token_post(request)


async def _ping(request: Request) -> Response:
    return Response("ok", media_type="text/plain")


async def _ca(request: Request) -> Response:
    """The cluster CA certificate, for clients to trust:
    curl -ks https://HOST/ca > /etc/containers/certs.d/HOST/ca.crt"""
    try:
        with open(context(request).ca_path, "rb") as f:
            pem = f.read()
    except OSError:
        raise NotFound("this replica has no cluster CA") from None
    return Response(pem, media_type="application/x-pem-file")


async def _scrub(request: Request) -> Response:
    """Re-hash every local blob now, repairing corrupt ones; answers with the report."""
    require_internal(request)  # until accounts exist, the cluster secret is the credential
    report = await context(request).scrubber.scrub_once()
    return JSONResponse(report.as_json())


async def _read_index(request: Request) -> Response:
    require_internal(request)
    registry = _registry(request)
    try:
        index = await registry.leader_read_index()
    except NoQuorum as e:
        raise Unavailable(str(e)) from None
    return JSONResponse({"index": index})


async def _metrics(request: Request) -> Response:
    metrics: Metrics = context(request).metrics
    return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Unknown("internal server error").response()


def create_app(config: ReplicaConfig) -> Starlette:
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(config, metrics) as replica:
            app.state.context = replica
            yield

    routes = [
        Route("/v2/", _base, methods=["GET", "HEAD"]),
        Route("/v2/_catalog", _catalog, methods=["GET"]),
        Route(
            "/v2/{rest:path}", _dispatch, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        ),
        Route("/_ping", _ping, methods=["GET", "HEAD"]),
        Route("/auth/token", _token_get, methods=["GET"]),
        Route("/auth/token", _token_post, methods=["POST"]),
        Route("/ca", _ca, methods=["GET"]),
        Route("/health", cluster_api.health, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        Route("/api/v0/replicas", cluster_api.list_replicas, methods=["GET"]),
        Route("/api/v0/backup", backup_api.download, methods=["GET"]),
        Route("/api/v0/backup/blobs", backup_api.blob_list, methods=["GET"]),
        Route("/api/v0/backup/blobs/{digest}", backup_api.blob, methods=["GET"]),
        Route("/api/v0/scrub", _scrub, methods=["POST"]),
        Route("/api/v0/join", membership_api.join, methods=["POST"]),
        Route("/api/v0/members", membership_api.add_member, methods=["POST"]),
        Route("/api/v0/join-tokens", membership_api.issue_join_token, methods=["POST"]),
        Route("/api/v0/join-tokens/revoke", membership_api.revoke_join_tokens, methods=["POST"]),
        Route("/api/v0/snapshot", membership_api.snapshot, methods=["GET"]),
        Route("/api/v0/replicas/{replica_id}", membership_api.remove_replica, methods=["DELETE"]),
        Route("/_internal/read-index", _read_index, methods=["GET"]),
        Route("/_internal/raft-snapshot", membership_api.raft_snapshot, methods=["GET"]),
        Route("/_internal/state-digests", state_api.recent_digests, methods=["GET"]),
        Route("/_internal/state-ranges", state_api.range_digests, methods=["GET"]),
        *accounts_api.ROUTES,
        *auth_settings_api.ROUTES,
        *events_api.ROUTES,
        *webhooks_api.ROUTES,
        *repositories_api.ROUTES,
        *tags_api.ROUTES,
        *gc_api.ROUTES,
        *logs_api.ROUTES,
        *policies_api.ROUTES,
        *scans_api.ROUTES,
        *ui_pages.routes(),
        *caches_api.ROUTES,
        Route("/api/v0/openapi.json", openapi.openapi, methods=["GET"]),
        Route("/api/v0/openapi-registry.json", registry_openapi.openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={RegistryError: errors.handle, Exception: _server_error},
    )
    app.add_middleware(RemovedGuard, app_state=app.state)
    return app
