"""How the cluster is doing: GET /health (this replica) and GET /api/v0/replicas (all).

/health answers anyone (load balancers poll it); its pid and the leader's view of
its peers only the cluster itself and administrators see. /api/v0/replicas is for
signed-in users: it tells who leads and which replica is down; Raft addresses are
for administrators. Asking every peer costs a round of requests, so users who are
not operators share one answer a second.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replica.api.same_origin import from_own_origin
from replica.auth import permissions, sessions
from replica.context import context
from replica.errors import Denied, RegistryError, Unauthorized
from replica.internal_auth import INTERNAL_HEADER, is_internal
from replica.peers import PeerError
from replica.registry import Registry

__version__ = importlib.metadata.version("quorum-registry")


async def _health(registry: Registry, url: str) -> dict[str, Any]:
    try:
        return {"reachable": True, **await registry.peers.health(url)}
    except PeerError as e:
        return {"reachable": False, "error": str(e)[:200]}


_SHARED_FOR_S = 1.0


async def member_views(
    request: Request, registry: Registry, shared: bool
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every member and its /health; users who are not operators share one round of
    requests a second, however many of them call. Operators always see it now."""
    cached = context(request).shared.get("replica_views")
    now = time.monotonic()
    if shared and cached is not None and now - cached[0] < _SHARED_FOR_S:
        return cached[1], cached[2]
    await registry.fresh()
    members = registry.state.replicas()
    views = await asyncio.gather(*(_health(registry, m.http_url) for m in members))
    context(request).shared["replica_views"] = (time.monotonic(), members, views)
    return members, views


async def operator(request: Request, quiet: bool) -> bool | None:
    """True for the cluster's own credentials and administrators, False for other
    signed-in users, None for anonymous callers. Bad credentials raise, unless
    `quiet` (then the caller is anonymous)."""
    if is_internal(context(request).internal_token, request.headers.get(INTERNAL_HEADER)):
        return True
    auth = context(request).auth
    if auth is None or (
        "authorization" not in request.headers and sessions.COOKIE not in request.cookies
    ):
        return None
    try:
        caller = await auth.caller(request)
    except RegistryError:
        if quiet:
            return None
        raise
    if caller.name is None:
        return None
    return bool(auth.state.view(permissions.is_admin, caller.name))


async def require_operator(request: Request, what: str) -> None:
    """Refuse anyone but administrators and the cluster's own credential (`what` is what
    only they may do), and any request from another site's page."""
    if not from_own_origin(request):
        raise Denied(f"cross-origin request from {request.headers['origin'][:100]} refused")
    allowed = await operator(request, quiet=False)
    if allowed is None:
        raise Unauthorized("sign in as an administrator")
    if not allowed:
        raise Denied(f"only administrators may {what}")


async def health(request: Request) -> Response:
    """200 when this replica can take writes, 503 otherwise, with what qreg status shows."""
    registry: Registry = context(request).registry
    status = registry.raft.status()
    leader = registry.raft.leader_address()
    status["leader"] = registry.replica_id_of(leader) if leader else None
    store = context(request).store_health
    can_write = (
        status["has_quorum"] and leader is not None and not status["halted"] and store.reachable
    )
    sync = context(request).blob_sync
    applied, digest = registry.state.digest()
    body = {
        "replica_id": registry.replica_id,
        "version": __version__,
        **status,
        "blobs_missing": sync.missing_blobs,
        "bytes_missing": sync.missing_bytes,
        "blobs_unavailable": sync.unavailable_blobs,
        "blob_store": store.health(),  # the error only for operators: it names the endpoint
        "state_digest": digest,
        "state_digest_index": applied,
        **context(request).divergence.health(),
    }
    removal = context(request).removal
    if removal is not None and removal.removed:
        body["removed"] = removal.removed
    if await operator(request, quiet=True):
        body["blob_store"].update(store.detail())
        body.update(
            pid=os.getpid(),
            leader_address=leader,
            last_contact_s=registry.raft.last_contact(),
            raft_members=registry.raft.members(),
        )
    return JSONResponse(body, status_code=200 if can_write and "removed" not in body else 503)


def replica_rows(
    members: list[Any], views: list[dict[str, Any]], addresses: bool
) -> list[dict[str, Any]]:
    """What /api/v0/replicas and the UI's cluster page show of each member."""
    # Only the leader knows when it last heard from each replica.
    contact = next((v.get("last_contact_s") or {} for v in views if v.get("role") == "leader"), {})
    leader_commit = max((v.get("commit_index") or 0 for v in views), default=0)
    replicas = []
    for member, view in zip(members, views, strict=False):
        applied = view.get("applied_index")
        replicas.append(
            {
                "replica_id": member.replica_id,
                "raft_address": member.raft_address if addresses else None,
                "url": member.http_url,
                "reachable": view["reachable"],
                "role": view.get("role", "unreachable"),
                "term": view.get("term"),
                "commit_index": view.get("commit_index"),
                "applied_index": applied,
                "lag": leader_commit - applied if applied is not None else None,
                "has_quorum": view.get("has_quorum"),
                "last_contact_s": contact.get(member.raft_address),
                "blobs_missing": view.get("blobs_missing"),
                "bytes_missing": view.get("bytes_missing"),
                "blobs_unavailable": view.get("blobs_unavailable"),
                "blob_store": view.get("blob_store"),
                "state_digest": view.get("state_digest"),
                "state_digest_index": view.get("state_digest_index"),
                "diverged_at": view.get("diverged_at"),
                "divergence": view.get("divergence"),
                "version": view.get("version"),
                "command_version": view.get("command_version"),
                "highest_command_version": view.get("highest_command_version"),
                "halted": view.get("halted"),
            }
        )
    return replicas


async def list_replicas(request: Request) -> Response:
    registry: Registry = context(request).registry
    addresses = await operator(request, quiet=False)
    if addresses is None:
        raise Unauthorized("sign in to see the replicas")
    members, views = await member_views(request, registry, shared=not addresses)
    replicas = replica_rows(members, views, addresses)
    return JSONResponse({"answered_by": registry.replica_id, "replicas": replicas})
