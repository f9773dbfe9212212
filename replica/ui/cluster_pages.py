"""The web UI's cluster page: every replica (role, term, indexes, lag, health, last
contact, blobs to sync) and every cache, refreshed every few seconds; administrators
get a join token for a new replica from it. And the Logs page: every replica's latest
lines, followed live (api/logs.py), and the audit log."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from consensus import accounts, caches
from replica.api.cluster import member_views, replica_rows
from replica.api.logs import LEVELS
from replica.ui.pages import Page
from replica.ui.views import when


async def cluster(request: Request, page: Page) -> Response:
    registry = page.ctx.registry
    members, health = await member_views(request, registry, shared=not page.is_admin)
    seen = page.ctx.cache_health.seen
    listed = []
    for cache in registry.state.view(caches.caches):
        state = seen.get(cache.name, {})
        checked = state.get("checked_at")
        listed.append(
            {
                "name": cache.name,
                "url": cache.url,
                "up": state.get("up"),
                "error": str(state.get("error") or "")[:200],
                "checked": when(int(float(checked) * 1000))
                if isinstance(checked, int | float)
                else "—",
            }
        )
    return page.render(
        "cluster.html",
        "Cluster",
        "/cluster",
        replicas=replica_rows(members, health, page.is_admin),
        caches=listed,
    )


async def logs(request: Request, page: Page) -> Response:
    tab = "audit" if request.query_params.get("tab") == "audit" else "lines"
    audit = []
    if tab == "audit":
        for entry in page.ctx.registry.state.view(accounts.audit_latest, 200):
            audit.append(
                {
                    "when": when(entry.get("at_ms", 0)),
                    "actor": entry.get("actor"),
                    "action": entry.get("action"),
                    "fields": json.dumps(entry.get("fields"), sort_keys=True)[:300],
                    "error": entry.get("error"),
                }
            )
    return page.render(
        "logs.html",
        "Logs",
        "/logs",
        tab=tab,
        levels=LEVELS,
        replicas=[r.replica_id for r in page.ctx.registry.state.replicas()]
        + [f"cache:{c.name}" for c in page.ctx.registry.state.view(caches.caches)],
        audit=audit,
    )
