"""The replica's ASGI application: `create_app(config)`, no module-level state.

Repository names contain slashes, so /v2/ paths are matched here by a small table
of anchored patterns (the last `/blobs/`, `/manifests/`… wins, as the name
grammar allows those words as components) rather than by path converters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import MetadataState, NoQuorum, RaftNode, accounts
from proto import commands_pb2 as pb
from replica import cache_redirect, errors, pki, upload_proxy
from replica.api import accounts as accounts_api
from replica.api import backup as backup_api
from replica.api import caches as caches_api
from replica.api import cluster as cluster_api
from replica.api import membership as membership_api
from replica.api import openapi
from replica.api import state as state_api
from replica.auth import grants
from replica.auth.service import AuthService, RealmPolicy
from replica.auth.tokens import TokenKeys
from replica.blobs.scrub import Scrubber
from replica.blobs.store import LocalBlobStore
from replica.blobs.streams import RECEIVED_KEY, FileRangeResponse
from replica.blobs.sync import BlobSync
from replica.blobs.transfer import BlobClient, BlobServer
from replica.blobs.uploads import UploadSessions, owner_of
from replica.cache_redirect import CacheHealth
from replica.config import ReplicaConfig
from replica.context import ReplicaContext, context
from replica.divergence import DivergenceMonitor
from replica.errors import (
    API_HEADERS,
    AlreadyExists,
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
from replica.internal_auth import internal_token
from replica.joining import become_member
from replica.joining import pending as pending_join
from replica.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from replica.metrics import Metrics
from replica.names import check_name
from replica.peers import PeerClient, require_internal
from replica.pki import TlsFiles
from replica.registry import UNCONFIRMED, Registry
from replica.removal import RemovalWatch, RemovedGuard
from replica.snapshot_fetch import make_fetcher

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
            return await upload_proxy.forward(registry, request, owner)
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
    path = request.url.path
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


def _grant_keys(
    config: ReplicaConfig,
) -> tuple[grants.GrantSigner | None, grants.GrantVerifier | None]:
    """Cache grants are signed with the cluster CA key, like tokens."""
    try:
        with open(config.tls_ca_key, "rb") as key, open(config.tls_ca, "rb") as cert:
            return grants.GrantSigner(key.read()), grants.GrantVerifier(cert.read())
    except OSError:
        return None, None


def _auth_service(config: ReplicaConfig, state: MetadataState) -> AuthService | None:
    """The token service, when this replica holds the cluster CA key that signs tokens."""
    try:
        with open(config.tls_ca_key, "rb") as key, open(config.tls_ca, "rb") as cert:
            keys = TokenKeys(key.read(), cert.read(), config.auth_service)
    except OSError:
        if config.auth_enabled:
            raise
        return None
    return AuthService(state, keys, config.auth_enabled, _realms(config))


def _realms(config: ReplicaConfig) -> RealmPolicy:
    names = {config.http_host}
    for path in (config.tls_public_cert, config.tls_cert):
        try:
            with open(path, "rb") as f:
                names |= pki.certificate_names(f.read())
        except (OSError, ValueError):
            continue
    return RealmPolicy(config.http_public_url, config.http_url, frozenset(names), config.http_port)


async def _create_admin(registry: Registry, password_hash: str) -> None:
    """The first start of a cluster creates its admin account, once a quorum commits it.

    Once per cluster, ever (a replicated marker): a deleted admin stays deleted, and
    the hash left in every replica's config is ignored from then on.
    """
    if not password_hash:
        return
    while not registry.state.view(accounts.bootstrapped):
        try:
            await registry.propose(
                pb.Command(
                    put_account=pb.PutAccount(
                        name="admin",
                        password_hash=password_hash,
                        global_role="admin",
                        set_role=True,
                        create_only=True,
                        bootstrap=True,
                        at_ms=int(time.time() * 1000),
                    )
                )
            )
        except AlreadyExists:
            return
        except Unavailable:
            await asyncio.sleep(1.0)


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
        state = MetadataState(config.path("metadata"))
        raft = RaftNode(
            state,
            config.path("raft"),
            config.raft_address,
            list(config.raft_peers),
            password=config.raft_secret or "",
            unsafe_skip_fsync=config.raft_unsafe_skip_fsync,
            compact_every=config.raft_compact_every,
            fetch_snapshot=make_fetcher(
                state, config.raft_secret, config.tls_ca if os.path.isfile(config.tls_ca) else None
            ),
        )
        joining = None
        if existing := pending_join(config.data_dir):
            joining = asyncio.create_task(
                become_member(
                    config.data_dir,
                    existing,
                    config.raft_address,
                    config.raft_secret or "",
                    config.tls_ca if os.path.isfile(config.tls_ca) else None,
                )
            )
        if not await asyncio.to_thread(raft.wait_ready, 60.0):
            log.warning("raft is not ready after 60 s; serving anyway")
        tls = TlsFiles(config.tls_ca, config.tls_ca_key, config.tls_cert, config.tls_key)
        has_tls = os.path.isfile(tls.cert)
        peers = PeerClient(config.raft_secret, tls if has_tls else None)
        store = LocalBlobStore(config.path("storage"))
        blob_server = None
        if config.grpc_address:
            blob_server = BlobServer(
                config.grpc_address, store, config.replica_id, config.raft_secret, tls
            )
            blob_server.start()
        blobs = BlobClient(config.raft_secret, tls) if has_tls else None
        registry = Registry(
            replica_id=config.replica_id,
            store=store,
            uploads=UploadSessions(
                config.path("storage"),
                config.replica_id,
                config.uploads_max_per_user,
                config.uploads_expire_after_s,
            ),
            state=state,
            raft=raft,
            peers=peers,
            blobs=blobs,
            replication_factor=config.blobs_replication_factor,
        )
        auth = _auth_service(config, state)
        grant_signer, grant_verifier = _grant_keys(config)
        health = CacheHealth(registry, config.tls_ca)
        checking = asyncio.create_task(health.run())
        metrics.watch_raft(raft.status)
        registration = asyncio.create_task(registry.register(config.http_url, config.grpc_address))
        bootstrap = asyncio.create_task(_create_admin(registry, config.auth_admin_password_hash))
        sync = BlobSync(registry.replication)
        metrics.watch_blob_sync(sync)
        syncing = asyncio.create_task(sync.run())
        scrubber = Scrubber(
            registry.replication,
            metrics,
            config.scrub_interval_s,
            config.scrub_rate_mib_s,
        )
        scrubbing = asyncio.create_task(scrubber.run())
        expiring = asyncio.create_task(registry.uploads.expire_forever())
        monitor = DivergenceMonitor(registry, metrics, config.state_verify_interval_s)
        monitoring = asyncio.create_task(monitor.run())
        removal = RemovalWatch(registry, config.data_dir)
        watching = asyncio.create_task(removal.run())
        app.state.context = ReplicaContext(
            registry=registry,
            auth=auth,
            metrics=metrics,
            grant_signer=grant_signer,
            grant_verifier=grant_verifier,
            cache_health=health,
            blob_sync=sync,
            scrubber=scrubber,
            divergence=monitor,
            removal=removal,
            secret=config.raft_secret,
            internal_token=internal_token(config.raft_secret),
            ca_path=config.tls_ca,
            ca_key_path=config.tls_ca_key,
            public_url=config.http_public_url,
            redirect_clients=tuple(c.lower() for c in config.caches_redirect_clients),
        )
        log.info("replica %s ready", config.replica_id)
        try:
            yield
        finally:
            registration.cancel()
            if joining is not None:
                joining.cancel()
            bootstrap.cancel()
            syncing.cancel()
            scrubbing.cancel()
            expiring.cancel()
            monitoring.cancel()
            watching.cancel()
            checking.cancel()
            await peers.close()
            if blobs is not None:
                await blobs.aclose()
            if blob_server is not None:
                await asyncio.to_thread(blob_server.stop)
            await asyncio.to_thread(raft.close)
            state.sync()
            state.close()

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
        Route("/api/v0/backup/blobs/{digest}", backup_api.blob, methods=["GET"]),
        Route("/api/v0/scrub", _scrub, methods=["POST"]),
        Route("/api/v0/join", membership_api.join, methods=["POST"]),
        Route("/api/v0/members", membership_api.add_member, methods=["POST"]),
        Route("/api/v0/join-tokens/revoke", membership_api.revoke_join_tokens, methods=["POST"]),
        Route("/api/v0/snapshot", membership_api.snapshot, methods=["GET"]),
        Route("/api/v0/replicas/{replica_id}", membership_api.remove_replica, methods=["DELETE"]),
        Route("/_internal/read-index", _read_index, methods=["GET"]),
        Route("/_internal/raft-snapshot", membership_api.raft_snapshot, methods=["GET"]),
        Route("/_internal/state-digests", state_api.recent_digests, methods=["GET"]),
        Route("/_internal/state-ranges", state_api.range_digests, methods=["GET"]),
        *accounts_api.ROUTES,
        *caches_api.ROUTES,
        Route("/api/v0/openapi.json", openapi.openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={RegistryError: errors.handle, Exception: _server_error},
    )
    app.add_middleware(RemovedGuard, app_state=app.state)
    return app
