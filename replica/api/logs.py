"""Recent log lines of every replica, for administrators (the web UI's Logs page).

GET /_internal/logs?after=N      (cluster credential) this replica's lines after N
GET /api/v0/logs?after=r0:12,r1:40&level=warning&q=text&replica=r1
    (administrators) every replica's and cache's lines after each one's cursor (a
    cache's name is cache:NAME), filtered: level is
    the lowest shown, q a case-insensitive substring of the line; the answer's cursor
    is what to send next to follow new lines

Each replica keeps its latest 2,000 lines in memory; asking costs one request to each.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import caches
from proto import commands_pb2 as pb
from replica import logs
from replica.api.cluster import require_operator
from replica.auth import grants
from replica.context import context
from replica.errors import InvalidInput
from replica.peers import PeerError, require_internal

LEVELS = ("debug", "info", "warning", "error", "critical")


async def internal_logs(request: Request) -> Response:
    require_internal(request)
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        raise InvalidInput("after is a line number") from None
    kept = logs.recent()
    return JSONResponse({"lines": kept.since(after) if kept else []})


def _cursor(text: str) -> dict[str, int]:
    cursor = {}
    for part in text.split(",")[:64]:
        replica, _, seq = part.partition(":")
        if replica and seq.isdigit():
            cursor[replica[:64]] = int(seq)
    return cursor


def _wanted(line: dict[str, Any], level: str, q: str) -> bool:
    rank = LEVELS.index(line.get("level", "info")) if line.get("level") in LEVELS else 1
    if rank < LEVELS.index(level):
        return False
    return not q or q in json.dumps(line).lower()


async def recent_logs(request: Request) -> Response:
    await require_operator(request, "read the logs")
    params = request.query_params
    level = params.get("level", "debug")
    if level not in LEVELS:
        raise InvalidInput(f"level is one of {', '.join(LEVELS)}")
    q = params.get("q", "").lower()[:200]
    only = params.get("replica", "")
    cursor = _cursor(params.get("after", ""))
    ctx = context(request)
    registry = ctx.registry
    members = [m for m in registry.state.replicas() if not only or m.replica_id == only]
    nodes = [c for c in registry.state.view(caches.caches) if not only or f"cache:{c.name}" == only]

    async def one(member: Any) -> tuple[str, list[dict[str, Any]] | str]:
        try:
            return member.replica_id, await registry.peers.logs(
                member.http_url, cursor.get(member.replica_id, 0)
            )
        except PeerError as e:
            return member.replica_id, str(e)[:200]

    async def cache(node: pb.PutCache) -> tuple[str, list[dict[str, Any]] | str]:
        name = f"cache:{node.name}"
        if ctx.grant_signer is None:
            return name, "this replica cannot sign grants"
        grant = ctx.grant_signer.issue("", grants.LOGS, grants.LOGS, node.name)
        try:
            r = await ctx.cache_health.client.get(
                f"{node.url}/_internal/logs",
                params={"after": cursor.get(name, 0)},
                headers={grants.LOGS_GRANT_HEADER: grant},
            )
            r.raise_for_status()
            return name, list(r.json()["lines"])
        except (httpx.HTTPError, ValueError, KeyError) as e:
            return name, f"{type(e).__name__}: {e}"[:200]

    lines: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    answers = await asyncio.gather(*(one(m) for m in members), *(cache(c) for c in nodes))
    for replica, found in answers:
        if isinstance(found, str):
            errors[replica] = found
            continue
        if found:
            cursor[replica] = max(line["seq"] for line in found)
        lines.extend({"replica": replica, **line} for line in found if _wanted(line, level, q))
    lines.sort(key=lambda line: (line.get("ts", ""), line["replica"], line["seq"]))
    return JSONResponse(
        {
            "lines": lines[-1000:],
            "cursor": ",".join(f"{r}:{n}" for r, n in sorted(cursor.items())),
            "errors": errors,
        }
    )


ROUTES = [
    Route("/api/v0/logs", recent_logs, methods=["GET"]),
    Route("/_internal/logs", internal_logs, methods=["GET"]),
]
