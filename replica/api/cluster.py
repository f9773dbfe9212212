"""GET /api/v0/replicas: every replica of the cluster and how it is doing."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from replica.peers import PeerError
from replica.registry import Registry


async def _health(registry: Registry, url: str) -> dict[str, Any]:
    try:
        return {"reachable": True, **await registry.peers.health(url)}
    except PeerError as e:
        return {"reachable": False, "error": str(e)[:200]}


async def list_replicas(request: Request) -> JSONResponse:
    registry: Registry = request.app.state.registry
    await registry.fresh()
    members = registry.state.replicas()
    views = await asyncio.gather(*(_health(registry, m.http_url) for m in members))
    # Only the leader knows when it last heard from each replica.
    contact = next((v.get("last_contact_s") or {} for v in views if v.get("role") == "leader"), {})
    leader_commit = max((v.get("commit_index") or 0 for v in views), default=0)
    replicas = []
    for member, view in zip(members, views):
        applied = view.get("applied_index")
        replicas.append({
            "replica_id": member.replica_id,
            "raft_address": member.raft_address,
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
        })
    return JSONResponse({"answered_by": registry.replica_id, "replicas": replicas})
