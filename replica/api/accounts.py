"""The management API for accounts, organizations, teams and tokens (JSON); repositories
are in repositories.py, on the same Context and endpoint wrapper.

    GET    /api/v0/accounts                                   everyone signed in
    POST   /api/v0/accounts                  {name, password | is_org, global_role}   admins
    GET    /api/v0/accounts/{name}
    PATCH  /api/v0/accounts/{name}           {password, global_role}   the user (password) or admins
    DELETE /api/v0/accounts/{name}                                     admins
    GET    /api/v0/accounts/{org}/teams
    POST   /api/v0/accounts/{org}/teams      {name}                    organization owners
    GET    /api/v0/accounts/{org}/teams/{team}/members
    PUT    /api/v0/accounts/{org}/teams/{team}/members/{user}          organization owners
    DELETE /api/v0/accounts/{org}/teams/{team}/members/{user}          organization owners
    POST   /api/v0/accounts/{user}/tokens    {name, expires_in_days}  the user or admins
    GET    /api/v0/accounts/{user}/tokens
    DELETE /api/v0/accounts/{user}/tokens/{id}
    GET    /api/v0/audit?after=N             admins: account changes, failed logins, refused pulls

Callers authenticate with Basic (password or personal access token) or a bearer
token. Every change goes through Raft, carrying who asked; the state machine
keeps it in the audit log.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import accounts
from proto import commands_pb2 as pb
from replica.api.json_body import read_body
from replica.api.same_origin import refuse_cross_site
from replica.auth import passwords, permissions
from replica.auth.service import AuthService, Caller, client_address
from replica.context import context
from replica.errors import Denied, InvalidInput, NotFound, Unauthorized
from replica.peers import require_internal
from replica.registry import Registry

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")

Handler = Callable[[Request, "Context"], Awaitable[Response]]


class Context:
    def __init__(self, registry: Registry, auth: AuthService, caller: Caller) -> None:
        self.registry = registry
        self.auth = auth
        self.caller = caller.name
        self.via_access_token = caller.via_access_token

    def view(self, query: Callable[..., Any], *args: Any) -> Any:
        return self.registry.state.view(query, *args)

    def signed_in(self) -> str:
        if self.caller is None:
            # No Basic challenge: a browser would offer its password dialog, and then send
            # the credentials with every request any other site makes it send here.
            raise Unauthorized("sign in: Basic credentials or a bearer token")
        return self.caller

    def full_credential(self, what: str) -> None:
        """Refuse `what` to a personal access token or a client certificate: whoever
        holds one must not be able to take the whole account over with it."""
        if self.via_access_token:
            raise Denied(
                f"a personal access token or a client certificate cannot {what}; sign in "
                "with the password"
            )

    def is_admin(self) -> bool:
        return bool(self.caller) and bool(self.view(permissions.is_admin, self.caller))

    def admin(self) -> str:
        if not self.view(permissions.is_admin, self.signed_in()):
            raise Denied("only administrators may do this")
        return self.signed_in()

    def owner_of(self, org: str) -> str:
        if not self.view(permissions.manages_org, self.signed_in(), org):
            raise Denied(f"only owners of {org} and administrators may do this")
        return self.signed_in()

    async def change(self, **command: Any) -> None:
        await self.registry.propose(pb.Command(actor=self.caller or "", at_ms=now_ms(), **command))


def now_ms() -> int:
    return int(time.time() * 1000)


def valid_name(value: Any, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            f"{what} must be 1-64 lowercase letters, digits, . _ - (got {str(value)[:70]!r})"
        )
    return value


def _account_json(account: pb.Account, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": account.name, "is_org": account.is_org}
    if full and not account.is_org:
        out["global_role"] = account.global_role or "none"
        out["source"] = account.source or "managed"
        out["active"] = not account.deactivated
    return out


def _role(value: Any) -> str:
    role = "" if value in (None, "none") else value
    if role not in accounts.ROLES:
        raise InvalidInput("global_role is none, read-only, read-write or admin")
    return str(role)


def _account(ctx: Context, name: str) -> pb.Account:
    found = ctx.view(accounts.account, name)
    if found is None:
        raise NotFound(f"no account named {name}")
    return found  # type: ignore[no-any-return]


# ---- accounts -------------------------------------------------------------------------


async def list_accounts(request: Request, ctx: Context) -> Response:
    caller = ctx.signed_in()
    full = ctx.view(permissions.is_admin, caller)
    return JSONResponse({"accounts": [_account_json(a, full) for a in ctx.view(accounts.accounts)]})


async def create_account(request: Request, ctx: Context) -> Response:
    ctx.admin()
    body = await read_body(request)
    name = valid_name(body.get("name"))
    if body.get("is_org"):
        await ctx.change(
            put_account=pb.PutAccount(name=name, is_org=True, create_only=True, at_ms=now_ms())
        )
    else:
        password = body.get("password")
        if not isinstance(password, str) or len(password) < 8:
            raise InvalidInput("a user needs a password of 8 characters or more")
        hashed = await ctx.auth.hashing.run(passwords.hash_password, password)
        await ctx.change(
            put_account=pb.PutAccount(
                name=name,
                password_hash=hashed,
                global_role=_role(body.get("global_role")),
                set_role=True,
                create_only=True,
                at_ms=now_ms(),
            )
        )
    return JSONResponse(_account_json(_account(ctx, name), True), status_code=201)


async def get_account(request: Request, ctx: Context) -> Response:
    caller = ctx.signed_in()
    account = _account(ctx, request.path_params["name"])
    full = caller == account.name or ctx.view(permissions.is_admin, caller)
    return JSONResponse(_account_json(account, full))


async def update_account(request: Request, ctx: Context) -> Response:
    caller = ctx.signed_in()
    account = _account(ctx, request.path_params["name"])
    body = await read_body(request)
    is_admin = ctx.view(permissions.is_admin, caller)
    if account.is_org or not (is_admin or caller == account.name):
        raise Denied("only the user and administrators may change an account")
    command = pb.PutAccount(name=account.name, at_ms=now_ms())
    if "global_role" in body:
        if not is_admin:
            raise Denied("only administrators change global roles")
        command.global_role, command.set_role = _role(body["global_role"]), True
    if "password" in body:
        ctx.full_credential("change a password")
        password = body["password"]
        if not isinstance(password, str) or len(password) < 8:
            raise InvalidInput("a password has 8 characters or more")
        if caller == account.name:
            # A stolen session must not be enough to lock the owner out.
            current = body.get("current_password")
            if not isinstance(current, str):
                raise InvalidInput("changing your own password needs current_password")
            try:
                await ctx.auth.login(caller, current, client_address(request))
            except Unauthorized:
                raise Denied("current_password is not this account's password") from None
        keep = body.get("keep_access_tokens", False)
        if not isinstance(keep, bool):
            raise InvalidInput("keep_access_tokens is true or false")
        command.keep_access_tokens = keep
        command.password_hash = await ctx.auth.hashing.run(passwords.hash_password, password)
    await ctx.change(put_account=command)
    return JSONResponse(_account_json(_account(ctx, account.name), True))


async def delete_account(request: Request, ctx: Context) -> Response:
    ctx.admin()
    ctx.full_credential("delete an account")
    await ctx.change(delete_account=pb.DeleteAccount(name=request.path_params["name"]))
    return Response(status_code=204)


# ---- teams ----------------------------------------------------------------------------


async def list_teams(request: Request, ctx: Context) -> Response:
    ctx.signed_in()
    org = request.path_params["name"]
    return JSONResponse({"teams": [{"name": t} for t in ctx.view(accounts.teams, org)]})


async def create_team(request: Request, ctx: Context) -> Response:
    org = request.path_params["name"]
    ctx.owner_of(org)
    team = valid_name((await read_body(request)).get("name"), "team name")
    await ctx.change(put_team=pb.PutTeam(org=org, team=team, create_only=True))
    return JSONResponse({"name": team}, status_code=201)


async def list_members(request: Request, ctx: Context) -> Response:
    ctx.signed_in()
    p = request.path_params
    return JSONResponse(
        {"members": [{"name": m} for m in ctx.view(accounts.team_members, p["name"], p["team"])]}
    )


async def set_member(request: Request, ctx: Context) -> Response:
    p = request.path_params
    ctx.owner_of(p["name"])
    await ctx.change(
        set_team_member=pb.SetTeamMember(
            org=p["name"], team=p["team"], user=p["user"], member=request.method == "PUT"
        )
    )
    return Response(status_code=204)


# ---- repositories -----------------------------------------------------------------------


# ---- personal access tokens --------------------------------------------------------------


def _self_or_admin(ctx: Context, user: str) -> None:
    caller = ctx.signed_in()
    if caller != user and not ctx.view(permissions.is_admin, caller):
        raise Denied("only the user and administrators manage a user's tokens")


async def create_token(request: Request, ctx: Context) -> Response:
    user = request.path_params["name"]
    _self_or_admin(ctx, user)
    ctx.full_credential("create personal access tokens")
    body = await read_body(request)
    label = valid_name(body.get("name"), "token name")
    days = body.get("expires_in_days", 90)
    if not isinstance(days, int) or not 0 <= days <= 3650:
        raise InvalidInput("expires_in_days is 0 (never) to 3650")
    token, token_id, hashed = passwords.new_access_token()
    now = now_ms()
    await ctx.change(
        put_access_token=pb.PutAccessToken(
            user=user,
            token_id=token_id,
            name=label,
            secret_hash=hashed,
            created_ms=now,
            expires_ms=now + days * 86_400_000 if days else 0,
        )
    )
    return JSONResponse({"id": token_id, "name": label, "token": token}, status_code=201)


async def list_tokens(request: Request, ctx: Context) -> Response:
    user = request.path_params["name"]
    _self_or_admin(ctx, user)
    return JSONResponse(
        {
            "tokens": [
                {
                    "id": t.token_id,
                    "name": t.name,
                    "created_ms": t.created_ms,
                    "expires_ms": t.expires_ms,
                }
                for t in ctx.view(accounts.access_tokens, user)
            ]
        }
    )


async def revoke_token(request: Request, ctx: Context) -> Response:
    user = request.path_params["name"]
    _self_or_admin(ctx, user)
    await ctx.change(
        revoke_access_token=pb.RevokeAccessToken(
            user=user, token_id=request.path_params["token_id"]
        )
    )
    return Response(status_code=204)


async def audit(request: Request, ctx: Context) -> Response:
    ctx.admin()
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        raise InvalidInput("after is a Raft index") from None
    return JSONResponse(
        {
            "changes": ctx.view(accounts.audit_log, after, 1000),
            **await _failed_logins_everywhere(ctx, request),
        }
    )


async def _failed_logins_everywhere(ctx: Context, request: Request) -> dict[str, Any]:
    """Failed logins and pulls refused by the signed-only policy are not replicated (a
    guessing attack must not load Raft); each replica keeps its own, and the audit
    gathers them from every replica it can reach."""
    registry = ctx.registry
    peers = [r for r in registry.state.replicas() if r.replica_id != registry.replica_id]
    answers = await asyncio.gather(
        *(registry.peers.audit_events(p.http_url) for p in peers), return_exceptions=True
    )
    here = registry.replica_id
    failures = [{**f, "replica": here} for f in ctx.auth.recent_failures]
    refused = [{**f, "replica": here} for f in context(request).signed_tags.refusals]
    unreachable = []
    for peer, answer in zip(peers, answers, strict=False):
        if isinstance(answer, BaseException):
            unreachable.append(peer.replica_id)
        else:
            failures += [{**f, "replica": peer.replica_id} for f in answer["failed_logins"]]
            refused += [{**f, "replica": peer.replica_id} for f in answer["refused_pulls"]]
    failures.sort(key=lambda f: f.get("at_ms", 0))
    refused.sort(key=lambda f: f.get("at_ms", 0))
    return {
        "failed_logins": failures,
        "refused_pulls": refused,
        "replicas_unreachable": unreachable,
    }


async def failed_logins_here(request: Request) -> Response:
    """This replica's recent authentication failures and refused pulls, for the audit
    of another replica."""
    require_internal(request)
    auth: AuthService | None = context(request).auth
    return JSONResponse(
        {
            "failed_logins": list(auth.recent_failures) if auth else [],
            "refused_pulls": list(context(request).signed_tags.refusals),
        }
    )


# ---- wiring -----------------------------------------------------------------------------


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def call(request: Request) -> Response:
        auth: AuthService | None = context(request).auth
        if auth is None:
            raise NotFound("accounts need the cluster CA key on this replica")
        refuse_cross_site(request)
        caller = await auth.caller(request)
        return await handler(request, Context(context(request).registry, auth, caller))

    return call


ROUTES = [
    Route("/api/v0/accounts", endpoint(list_accounts), methods=["GET"]),
    Route("/api/v0/accounts", endpoint(create_account), methods=["POST"]),
    Route("/api/v0/accounts/{name}", endpoint(get_account), methods=["GET"]),
    Route("/api/v0/accounts/{name}", endpoint(update_account), methods=["PATCH"]),
    Route("/api/v0/accounts/{name}", endpoint(delete_account), methods=["DELETE"]),
    Route("/api/v0/accounts/{name}/teams", endpoint(list_teams), methods=["GET"]),
    Route("/api/v0/accounts/{name}/teams", endpoint(create_team), methods=["POST"]),
    Route("/api/v0/accounts/{name}/teams/{team}/members", endpoint(list_members), methods=["GET"]),
    Route(
        "/api/v0/accounts/{name}/teams/{team}/members/{user}",
        endpoint(set_member),
        methods=["PUT", "DELETE"],
    ),
    Route("/api/v0/accounts/{name}/tokens", endpoint(create_token), methods=["POST"]),
    Route("/api/v0/accounts/{name}/tokens", endpoint(list_tokens), methods=["GET"]),
    Route("/api/v0/accounts/{name}/tokens/{token_id}", endpoint(revoke_token), methods=["DELETE"]),
    Route("/api/v0/audit", endpoint(audit), methods=["GET"]),
    Route("/_internal/failed-logins", failed_logins_here, methods=["GET"]),
]
