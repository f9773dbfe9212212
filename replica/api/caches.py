"""The management API for geographic caches and users' cache preference (JSON).

GET    /api/v0/content_caches                 everyone signed in; with health as seen here
POST   /api/v0/content_caches   {name, url, region, upstream}   admins
DELETE /api/v0/content_caches/{name}                           admins
GET    /api/v0/accounts/{name}/settings       the user or admins
PATCH  /api/v0/accounts/{name}/settings  {cache}   the user or admins ("" clears)
POST   /api/v0/content_caches/{name}/users  {users: [...]}   admins: in bulk
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import caches
from proto import commands_pb2 as pb
from replica.api.accounts import Context, endpoint, valid_name
from replica.api.json_body import read_body
from replica.context import context
from replica.errors import Denied, InvalidInput, NotFound


def _cache_json(request: Request, cache: pb.PutCache) -> dict[str, Any]:
    health = context(request).cache_health
    seen = health.seen.get(cache.name, {}) if health is not None else {}
    return {
        "name": cache.name,
        "url": cache.url,
        "region": cache.region,
        "upstream": cache.upstream or None,
        "up": seen.get("up"),
        "checked_at": seen.get("checked_at"),
        "error": seen.get("error") or None,
    }


async def list_caches(request: Request, ctx: Context) -> Response:
    ctx.signed_in()
    return JSONResponse(
        {"content_caches": [_cache_json(request, c) for c in ctx.view(caches.caches)]}
    )


async def add_cache(request: Request, ctx: Context) -> Response:
    ctx.admin()
    body = await read_body(request)
    name = valid_name(body.get("name"), "cache name")
    url, region, upstream = (str(body.get(k) or "") for k in ("url", "region", "upstream"))
    await ctx.change(
        put_cache=pb.PutCache(
            name=name, url=url, region=region[:100], upstream=upstream, create_only=True
        )
    )
    return JSONResponse(_cache_json(request, ctx.view(caches.cache, name)), status_code=201)


async def remove_cache(request: Request, ctx: Context) -> Response:
    ctx.admin()
    await ctx.change(delete_cache=pb.DeleteCache(name=request.path_params["name"]))
    return Response(status_code=204)


def _self_or_admin(ctx: Context, user: str) -> None:
    if ctx.signed_in() != user and not ctx.is_admin():
        raise Denied("only the user and administrators see and change a user's settings")


async def get_settings(request: Request, ctx: Context) -> Response:
    user = request.path_params["name"]
    _self_or_admin(ctx, user)
    preferred = ctx.view(caches.preference, user)
    return JSONResponse({"cache": preferred.name if preferred else None})


async def update_settings(request: Request, ctx: Context) -> Response:
    user = request.path_params["name"]
    _self_or_admin(ctx, user)
    body = await read_body(request)
    if "cache" not in body:
        raise InvalidInput('settings: {"cache": NAME} (or "" for none)')
    await ctx.change(
        set_cache_preference=pb.SetCachePreference(user=user, cache=str(body["cache"] or ""))
    )
    return await get_settings(request, ctx)


async def assign_users(request: Request, ctx: Context) -> Response:
    ctx.admin()
    name = request.path_params["name"]
    if ctx.view(caches.cache, name) is None:
        raise NotFound(f"no cache named {name}")
    users = (await read_body(request)).get("users")
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise InvalidInput("users: a list of user names")
    for user in users:
        await ctx.change(set_cache_preference=pb.SetCachePreference(user=user, cache=name))
    return JSONResponse({"cache": name, "users": users})


ROUTES = [
    Route("/api/v0/content_caches", endpoint(list_caches), methods=["GET"]),
    Route("/api/v0/content_caches", endpoint(add_cache), methods=["POST"]),
    Route("/api/v0/content_caches/{name}", endpoint(remove_cache), methods=["DELETE"]),
    Route("/api/v0/content_caches/{name}/users", endpoint(assign_users), methods=["POST"]),
    Route("/api/v0/accounts/{name}/settings", endpoint(get_settings), methods=["GET"]),
    Route("/api/v0/accounts/{name}/settings", endpoint(update_settings), methods=["PATCH"]),
]
