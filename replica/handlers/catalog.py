"""GET /v2/_catalog, paginated with n and last."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from replica.auth.service import AuthService
from replica.errors import API_HEADERS
from replica.handlers.common import page, pagination
from replica.registry import Registry


async def list_repositories(
    registry: Registry, request: Request, auth: AuthService | None = None
) -> JSONResponse:
    n, last = pagination(request)
    limit = n + 1
    if auth is not None and auth.enabled:
        # Only what the account may pull, filtered while the page is read.
        names = await registry.catalog(limit, last, auth.pullable_by(request))
    else:
        names = await registry.catalog(limit, last)
    names, link = page(names, n, "/v2/_catalog")
    return JSONResponse({"repositories": names}, headers={**API_HEADERS, **link})
