"""Events in the management API: what happened to repositories, oldest first, in pages.

GET /api/v0/events?repository=ns/name|ns/&type=push&type=tag_delete
                  &since=…&until=…&after=ID&n=100
    anyone signed in: events of repositories they may pull (admins: all);
    since/until are ISO 8601 times or Unix milliseconds; `next` is the cursor
PUT /api/v0/events/retention   {"max_events": N, "days": D}   admins
"""

from __future__ import annotations

import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import events
from proto import commands_pb2 as pb
from replica.api.accounts import Context, endpoint
from replica.api.json_body import read_body
from replica.auth import permissions
from replica.errors import InvalidInput

_MAX_PAGE = 1000


def _time(value: str | None, what: str) -> int:
    """Unix milliseconds from an ISO 8601 time or a number of milliseconds."""
    if not value:
        return 0
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{what} is an ISO 8601 time or Unix milliseconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp() * 1000)


def _int(value: str | None, what: str, default: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise InvalidInput(f"{what} is a whole number")
    return int(value)


async def list_events(request: Request, ctx: Context) -> Response:
    caller = ctx.signed_in()
    q = request.query_params
    types = frozenset(q.getlist("type"))
    unknown = types - set(events.TYPES)
    if unknown:
        raise InvalidInput(f"unknown event types {sorted(unknown)}; known: {list(events.TYPES)}")
    repository = q.get("repository", "")
    visible = None
    if not ctx.is_admin():
        visible = lambda txn, name: "pull" in permissions.actions(txn, caller, name)  # noqa: E731
    found, after = ctx.view(
        events.events,
        _int(q.get("after"), "after", 0),
        min(_int(q.get("n"), "n", 100), _MAX_PAGE),
        repository,
        types,
        _time(q.get("since"), "since"),
        _time(q.get("until"), "until"),
        visible,
    )
    body: dict[str, Any] = {
        "events": [events.event_json(e) for e in found],
        "next": after or None,
    }
    return JSONResponse(body)


async def set_retention(request: Request, ctx: Context) -> Response:
    ctx.admin()
    body = await read_body(request)
    most, days = body.get("max_events", 0), body.get("days", 0)
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (most, days)):
        raise InvalidInput("max_events and days are whole numbers (0: the default)")
    await ctx.change(set_event_retention=pb.SetEventRetention(max_events=most, days=days))
    kept, kept_days = ctx.view(events.retention)
    return JSONResponse({"max_events": kept, "days": kept_days})


ROUTES = [
    Route("/api/v0/events", endpoint(list_events), methods=["GET"]),
    Route("/api/v0/events/retention", endpoint(set_retention), methods=["PUT"]),
]
