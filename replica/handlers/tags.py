"""GET /v2/<name>/tags/list, paginated with n and last."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from replica.errors import API_HEADERS
from replica.handlers.common import page, pagination
from replica.registry import Registry


async def list_tags(registry: Registry, request: Request, name: str) -> JSONResponse:
    n, last = pagination(request)
    tags = await registry.tags(name, n + 1, last)
    tags, link = page(tags, n, f"/v2/{name}/tags/list")
    return JSONResponse({"name": name, "tags": tags}, headers={**API_HEADERS, **link})
