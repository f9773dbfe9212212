"""GET /api/v0/replicas: every replica of the cluster and how it is doing.

Signed-in users only (or the cluster's own credentials): it tells who leads and
which replica is down. Raft addresses are for administrators. Asking every peer
costs a round of requests, so the answer is shared for a second among callers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replica.auth import permissions
from replica.errors import Denied, RegistryError, Unauthorized
from replica.peers import INTERNAL_HEADER, PeerError, is_internal
from replica.registry import Registry


async def _health(registry: Registry, url: str) -> dict[str, Any]:
    try:
        return {"reachable": True, **await registry.peers.health(url)}
    except PeerError as e:
        return {"reachable": False, "error": str(e)[:200]}


_SHARED_FOR_S = 1.0


async def _views(request: Request, registry: Registry,
                 shared: bool) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every member and its /health; users who are not operators share one round of
    requests a second, however many of them call. Operators always see it now."""
    cached = getattr(request.app.state, "replica_views", None)
    now = time.monotonic()
    if shared and cached is not None and now - cached[0] < _SHARED_FOR_S:
        return cached[1], cached[2]
    await registry.fresh()
    members = registry.state.replicas()
    views = await asyncio.gather(*(_health(registry, m.http_url) for m in members))
    request.app.state.replica_views = (time.monotonic(), members, views)
    return members, views


async def _may_see_addresses(request: Request) -> bool:
    """True for administrators and the cluster itself; 401/403 for anonymous callers."""
    if is_internal(request.app.state.internal_token, request.headers.get(INTERNAL_HEADER)):
        return True
    auth = request.app.state.auth
    if auth is None:
        raise Denied("cluster credentials required")
    caller = await auth.caller(request)
    if caller.name is None:
        raise Unauthorized("sign in to see the replicas")
    return bool(auth.state.view(permissions.is_admin, caller.name))


async def list_replicas(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    try:
        addresses = await _may_see_addresses(request)
    except RegistryError as e:
        return e.response()
    members, views = await _views(request, registry, shared=not addresses)
    # Only the leader knows when it last heard from each replica.
    contact = next((v.get("last_contact_s") or {} for v in views if v.get("role") == "leader"), {})
    leader_commit = max((v.get("commit_index") or 0 for v in views), default=0)
    replicas = []
    for member, view in zip(members, views):
        applied = view.get("applied_index")
        replicas.append({
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
            "state_digest": view.get("state_digest"),
            "state_digest_index": view.get("state_digest_index"),
            "diverged_at": view.get("diverged_at"),
            "divergence": view.get("divergence"),
        })
    return JSONResponse({"answered_by": registry.replica_id, "replicas": replicas})
