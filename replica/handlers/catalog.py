"""GET /v2/_catalog, paginated with n and last."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from replica.handlers.common import API_HEADERS, page, pagination
from replica.registry import Registry


async def list_repositories(registry: Registry, request: Request) -> JSONResponse:
    n, last = pagination(request)
    names = await registry.catalog(None if n is None else n + 1, last)
    names, link = page(names, n, "/v2/_catalog")
    return JSONResponse({"repositories": names}, headers={**API_HEADERS, **link})
