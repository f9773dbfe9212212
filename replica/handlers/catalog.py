"""GET /v2/_catalog, paginated with n and last."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from replica.auth.service import AuthService
from replica.handlers.common import API_HEADERS, page, pagination
from replica.registry import Registry


async def list_repositories(registry: Registry, request: Request,
                            auth: AuthService | None = None) -> JSONResponse:
    n, last = pagination(request)
    if auth is not None and auth.enabled:
        # Only what the account may pull: filter everything, then page.
        names = auth.readable(request, await registry.catalog(None, last))
        names = names if n is None else names[:n + 1]
    else:
        names = await registry.catalog(None if n is None else n + 1, last)
    names, link = page(names, n, "/v2/_catalog")
    return JSONResponse({"repositories": names}, headers={**API_HEADERS, **link})
