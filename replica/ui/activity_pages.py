"""The web UI's Activity page: the newest events of the repositories the user may
pull (filtered by repository and type), and the webhooks, mirrors and proxies they
manage with each one's latest deliveries or copies."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from consensus import events, webhooks
from replica.api.webhooks import manages
from replica.auth import permissions
from replica.ui.pages import Page
from replica.ui.views import when

SHOWN = 100
_KINDS = {"": "webhook", "push_mirror": "push mirror", "pull_mirror": "pull mirror",
          "proxy": "proxy"}  # fmt: skip


async def activity(request: Request, page: Page) -> Response:
    tab = "hooks" if request.query_params.get("tab") == "hooks" else "events"
    values: dict[str, Any] = {"tab": tab, "types": events.TYPES}
    if tab == "events":
        values.update(_events(request, page))
    else:
        values["hooks"] = _hooks(page)
    return page.render("activity.html", "Activity", "/activity", **values)


def _events(request: Request, page: Page) -> dict[str, Any]:
    repository = request.query_params.get("repository", "").strip()[:256]
    kind = request.query_params.get("type", "")
    types = frozenset({kind}) if kind in events.TYPES else frozenset()
    user = page.user
    visible = None
    if not page.is_admin:
        visible = lambda txn, name: "pull" in permissions.actions(txn, user, name)  # noqa: E731
    found = page.ctx.registry.state.view(events.latest, SHOWN, repository, types, visible)
    rows = [
        {
            "id": e.id, "when": when(e.at_ms, seconds=True), "type": e.type,
            "repository": e.repository, "tag": e.tag, "digest": e.digest, "actor": e.actor,
        }
        for e in found
    ]  # fmt: skip
    return {"events": rows, "repository": repository, "type": kind if types else ""}


def _hooks(page: Page) -> list[dict[str, Any]]:
    state = page.ctx.registry.state
    listed = []
    for hook in state.view(webhooks.webhooks):
        if not state.view(manages, page.user, hook.scope):
            continue
        lease = state.view(webhooks.lease, hook.id)
        listed.append(
            {
                "id": hook.id,
                "kind": _KINDS.get(hook.kind, hook.kind),
                "scope": hook.scope or "every repository",
                "url": hook.url,
                "events": ", ".join(hook.event_types) or "every event",
                "active": hook.active,
                "by": lease.replica_id if lease is not None else "",
                "log": [
                    {
                        "what": d.tag or d.event, "status": d.status, "code": d.code,
                        "attempts": d.attempts, "when": when(d.at_ms, seconds=True),
                        "millis": d.millis, "excerpt": d.excerpt[:200],
                    }
                    for d in state.view(webhooks.deliveries, hook.id, 10)
                ],
            }
        )  # fmt: skip
    return listed
