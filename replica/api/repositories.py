"""Repositories in the management API: list, create, read, change visibility, delete,
and grant a team access.

GET    /api/v0/repositories                              what the caller may pull
POST   /api/v0/repositories/{namespace}                  create one (its owner)
GET    /api/v0/repositories/{namespace}/{repo}           settings and team access
PATCH  /api/v0/repositories/{namespace}/{repo}           visibility (its administrators)
DELETE /api/v0/repositories/{namespace}/{repo}           delete it (its administrators)
DELETE /api/v0/repositories/{namespace}/{repo}/tags/{tag} delete a tag (its administrators)
PUT|DELETE .../{repo}/teamAccess/{team}                  grant or revoke (the org's owners)
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import accounts
from proto import commands_pb2 as pb
from replica.api.accounts import Context, endpoint, now_ms, valid_name
from replica.api.json_body import read_body
from replica.auth import permissions
from replica.errors import Denied, InvalidInput, NotFound
from replica.names import check_name, is_tag


def _repository(request: Request) -> str:
    p = request.path_params
    return check_name(f"{p['namespace']}/{p['repo']}")


def _repository_json(ctx: Context, name: str) -> dict[str, Any]:
    settings = ctx.view(accounts.repository, name)
    access = ctx.view(accounts.team_access, name)
    return {
        "name": name,
        "visibility": settings.visibility if settings else "private",
        "team_access": [
            {"team": f"{org}/{team}", "access": level}
            for (org, team), level in sorted(access.items())
        ],
    }


async def list_repositories(request: Request, ctx: Context) -> Response:
    names = sorted(
        set(await ctx.registry.catalog(None, "")) | set(ctx.view(accounts.declared_repositories))
    )
    readable = [n for n in names if "pull" in ctx.view(permissions.actions, ctx.caller, n)]
    return JSONResponse({"repositories": [_repository_json(ctx, n) for n in readable]})


async def create_repository(request: Request, ctx: Context) -> Response:
    namespace = request.path_params["namespace"]
    caller = ctx.signed_in()
    if caller != namespace and not ctx.view(permissions.manages_org, caller, namespace):
        raise Denied(f"only {namespace} (or its owners) may create repositories there")
    body = await read_body(request)
    name = check_name(f"{namespace}/{valid_name(body.get('name'), 'repository name')}")
    visibility = body.get("visibility", "private")
    await ctx.change(
        put_repository=pb.PutRepository(
            repository=name, visibility=str(visibility), create_only=True, at_ms=now_ms()
        )
    )
    return JSONResponse(_repository_json(ctx, name), status_code=201)


def _repository_admin(ctx: Context, name: str) -> None:
    caller = ctx.signed_in()
    if "delete" not in ctx.view(permissions.actions, caller, name):
        raise Denied(f"only administrators of {name} may do this")


async def get_repository(request: Request, ctx: Context) -> Response:
    name = _repository(request)
    if "pull" not in ctx.view(permissions.actions, ctx.caller, name):
        raise NotFound(f"no repository {name} that you may read")
    return JSONResponse(_repository_json(ctx, name))


async def update_repository(request: Request, ctx: Context) -> Response:
    name = _repository(request)
    _repository_admin(ctx, name)
    visibility = (await read_body(request)).get("visibility")
    await ctx.change(
        put_repository=pb.PutRepository(repository=name, visibility=str(visibility), at_ms=now_ms())
    )
    return JSONResponse(_repository_json(ctx, name))


async def delete_repository(request: Request, ctx: Context) -> Response:
    name = _repository(request)
    _repository_admin(ctx, name)
    await ctx.change(delete_repository=pb.DeleteRepository(repository=name))
    return Response(status_code=204)


async def delete_tag(request: Request, ctx: Context) -> Response:
    name = _repository(request)
    _repository_admin(ctx, name)
    tag = request.path_params["tag"]
    if not is_tag(tag):
        raise InvalidInput(f"{tag[:130]!r} is not a tag")
    await ctx.registry.delete_manifest(name, tag)
    return Response(status_code=204)


async def set_team_access(request: Request, ctx: Context) -> Response:
    name = _repository(request)
    org, team = request.path_params["namespace"], request.path_params["team"]
    ctx.owner_of(org)
    access = "" if request.method == "DELETE" else (await read_body(request)).get("access")
    await ctx.change(
        set_team_access=pb.SetTeamAccess(
            repository=name, org=org, team=team, access=str(access or "")
        )
    )
    return JSONResponse(_repository_json(ctx, name))


ROUTES = [
    Route("/api/v0/repositories", endpoint(list_repositories), methods=["GET"]),
    Route("/api/v0/repositories/{namespace}", endpoint(create_repository), methods=["POST"]),
    Route("/api/v0/repositories/{namespace}/{repo}", endpoint(get_repository), methods=["GET"]),
    Route(
        "/api/v0/repositories/{namespace}/{repo}", endpoint(update_repository), methods=["PATCH"]
    ),
    Route(
        "/api/v0/repositories/{namespace}/{repo}", endpoint(delete_repository), methods=["DELETE"]
    ),
    Route(
        "/api/v0/repositories/{namespace}/{repo}/tags/{tag}",
        endpoint(delete_tag),
        methods=["DELETE"],
    ),
    Route(
        "/api/v0/repositories/{namespace}/{repo}/teamAccess/{team}",
        endpoint(set_team_access),
        methods=["PUT", "DELETE"],
    ),
]
