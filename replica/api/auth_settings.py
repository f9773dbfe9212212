"""Authentication settings in the management API: the mode, the directory (LDAP), its
sync, teams that follow directory groups, trusted client CAs and revocations.
Administrators only (a team's group: its organization's owners too); every change is a
Raft command, so it is in the audit log and applies on every replica at once.

    GET  /api/v0/auth/settings                    the settings (never the bind password)
    PUT  /api/v0/auth/mode       {"mode": "managed" | "ldap" | "none", "force": false}
    PUT  /api/v0/auth/ldap       {url, start_tls, allow_plain, ca_pem, bind_dn,
                                  bind_password, user_base_dn, user_filter,
                                  username_attribute, admin_group_dn, member_attribute,
                                  keep_managed, sync_interval_s}   (keys given replace;
                                  an empty bind_password keeps the one set)
    POST /api/v0/auth/ldap/test  {username, password}   (both optional) what the directory says
    POST /api/v0/auth/ldap/sync                         sync now; what changed
    GET  /api/v0/auth/ldap/sync                         this replica's last sync
    PUT  /api/v0/accounts/{org}/teams/{team}/directory-group   {"group_dn": DN or ""}
    POST   /api/v0/auth/client-cas         {name, pem}   trust a client CA
    DELETE /api/v0/auth/client-cas/{name}
    PUT    /api/v0/auth/client-certificates {identity: cn|email|dns, revoke: [serial hex],
                                             crl_pem: PEM or ""}
"""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import accounts, directory
from proto import commands_pb2 as pb
from replica import client_certs, pki
from replica.api.accounts import Context, endpoint, now_ms, valid_name
from replica.api.json_body import read_body
from replica.auth.directory import Directory
from replica.auth.ldap import DirectoryUnavailable, LdapDirectory
from replica.errors import AlreadyExists, Conflict, InvalidInput, NotFound, Unavailable

_LDAP_TEXT = (
    "url",
    "ca_pem",
    "bind_dn",
    "user_base_dn",
    "user_filter",
    "username_attribute",
    "admin_group_dn",
    "member_attribute",
)
_LDAP_FLAGS = ("start_tls", "allow_plain", "keep_managed")
_MAX_TEXT = 64 * 1024  # a CA bundle
_SERIAL = re.compile(r"[0-9a-f]{1,40}")


def settings_json(settings: pb.AuthSettings) -> dict[str, Any]:
    ldap = settings.ldap
    return {
        "mode": settings.mode,
        "revision": settings.revision,
        "ldap": {
            **{k: getattr(ldap, k) for k in _LDAP_TEXT},
            **{k: getattr(ldap, k) for k in _LDAP_FLAGS},
            "sync_interval_s": ldap.sync_interval_s,
            "bind_password_set": bool(ldap.sealed_bind_password),
        },
        "client_cas": [_ca_json(ca) for ca in settings.client_cas],
        "crl_set": bool(settings.crl_pem),
        "certificate_identity": settings.certificate_identity or "cn",
        "revoked_serials": list(settings.revoked_serials),
    }


def _ca_json(ca: pb.ClientCa) -> dict[str, Any]:
    cert = client_certs.parse_ca(ca.pem)
    return {
        "name": ca.name,
        "added_ms": ca.added_ms,
        "subject": cert.subject.rfc4514_string(),
        "fingerprint": pki.fingerprint(ca.pem.encode()),
        "expires_ms": int(cert.not_valid_after_utc.timestamp() * 1000),
    }


def _directory(ctx: Context) -> Directory:
    found = ctx.auth.directory
    if found is None:
        raise Unavailable("this replica has no directory client")
    return found


async def change_settings(ctx: Context, edit: Any) -> pb.AuthSettings:
    """Read, `edit` (in place) and write the settings; again if they changed meanwhile."""
    for _ in range(3):
        current = ctx.view(directory.settings)
        wanted = pb.AuthSettings()
        wanted.CopyFrom(current)
        edit(wanted)
        try:
            await ctx.change(
                set_auth_settings=pb.SetAuthSettings(
                    settings=wanted, expected_revision=current.revision
                )
            )
        except Conflict:
            continue
        return ctx.view(directory.settings)  # type: ignore[no-any-return]
    raise Conflict("the authentication settings keep changing: try again")


async def get_settings(request: Request, ctx: Context) -> Response:
    ctx.admin()
    return JSONResponse(settings_json(ctx.view(directory.settings)))


async def set_mode(request: Request, ctx: Context) -> Response:
    caller = ctx.admin()
    ctx.full_credential("change how the registry signs people in")
    body = await read_body(request)
    mode = body.get("mode")
    if mode not in directory.MODES:
        raise InvalidInput(f"mode is one of {', '.join(directory.MODES)}")
    current = ctx.view(directory.settings)
    if mode == "ldap" and not body.get("force"):
        own = ctx.view(accounts.account, caller)
        if own is not None and own.source != directory.LDAP and not current.ldap.keep_managed:
            raise InvalidInput(
                f"{caller} is a managed account, and in ldap mode managed accounts sign in "
                "only with keep_managed on: set it (qreg auth ldap set --keep-managed) or "
                "pass force to lock yourself out knowingly"
            )
    changed = await change_settings(ctx, lambda s: setattr(s, "mode", mode))
    return JSONResponse(settings_json(changed))


def _ldap_changes(body: dict[str, Any], directory_client: Directory) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in _LDAP_TEXT:
        if name in body:
            value = body[name]
            if not isinstance(value, str) or len(value) > _MAX_TEXT:
                raise InvalidInput(f"{name} must be a string (at most 64 KiB)")
            changes[name] = value.strip()
    for name in _LDAP_FLAGS:
        if name in body:
            if not isinstance(body[name], bool):
                raise InvalidInput(f"{name} must be true or false")
            changes[name] = body[name]
    if "sync_interval_s" in body:
        interval = body["sync_interval_s"]
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 0:
            raise InvalidInput("sync_interval_s must be a whole number of seconds (0: never)")
        if 0 < interval < 60:
            raise InvalidInput("sync_interval_s is at least 60 (or 0: only when asked)")
        changes["sync_interval_s"] = interval
    if "bind_password" in body:
        password = body["bind_password"]
        if not isinstance(password, str) or len(password) > 1024:
            raise InvalidInput("bind_password must be a string")
        if password:  # empty keeps the one set (a form that does not show it sends "")
            changes["sealed_bind_password"] = directory_client.seal(password)
    unknown = set(body) - set(_LDAP_TEXT) - set(_LDAP_FLAGS) - {"sync_interval_s", "bind_password"}
    if unknown:
        raise InvalidInput(f"unknown settings: {', '.join(sorted(unknown))}")
    return changes


def _checked(ldap: pb.LdapSettings) -> None:
    """Refuse settings that cannot work, before they are stored."""
    try:
        LdapDirectory(ldap, "")
    except DirectoryUnavailable as e:
        raise InvalidInput(str(e)) from None


async def set_ldap(request: Request, ctx: Context) -> Response:
    ctx.admin()
    ctx.full_credential("change how the registry signs people in")
    changes = _ldap_changes(await read_body(request), _directory(ctx))

    def edit(settings: pb.AuthSettings) -> None:
        for name, value in changes.items():
            setattr(settings.ldap, name, value)
        if settings.ldap.url:
            _checked(settings.ldap)

    return JSONResponse(settings_json(await change_settings(ctx, edit)))


async def test_ldap(request: Request, ctx: Context) -> Response:
    """Bind as the service account, count users, and check a user's password if given."""
    ctx.admin()
    body = await read_body(request)
    found = _directory(ctx)
    settings = ctx.view(directory.settings)
    if not settings.ldap.url:
        raise InvalidInput("no directory is configured: qreg auth ldap set first")
    started = time.monotonic()
    report: dict[str, Any] = {"url": settings.ldap.url}
    try:
        client = found.client(settings)
        report["users"] = len(await found.call(lambda: _users(client)))
        username, password = body.get("username"), body.get("password")
        if isinstance(username, str) and isinstance(password, str):
            report["login"] = bool(await found.call(client.authenticate, username, password))
        report["ok"] = True
    except DirectoryUnavailable as e:
        report.update(ok=False, error=str(e))
    report["seconds"] = round(time.monotonic() - started, 3)
    return JSONResponse(report)


def _users(client: LdapDirectory) -> list[Any]:
    with client.connection() as conn:
        return client.users(conn)


async def sync_now(request: Request, ctx: Context) -> Response:
    caller = ctx.admin()
    report = await _directory(ctx).sync(caller)
    if report.error:
        raise Unavailable(f"the directory sync could not run: {report.error}")
    return JSONResponse(report.json())


async def last_sync(request: Request, ctx: Context) -> Response:
    ctx.admin()
    last = _directory(ctx).last
    return JSONResponse(last.json() if last else {})


# ---- client certificates -----------------------------------------------------------


async def add_client_ca(request: Request, ctx: Context) -> Response:
    ctx.admin()
    ctx.full_credential("change how the registry signs people in")
    body = await read_body(request)
    name, pem = valid_name(body.get("name")), body.get("pem")
    if not isinstance(pem, str) or len(pem) > _MAX_TEXT:
        raise InvalidInput("pem must be the CA certificate (PEM, at most 64 KiB)")
    client_certs.parse_ca(pem)

    def edit(settings: pb.AuthSettings) -> None:
        if any(ca.name == name for ca in settings.client_cas):
            raise AlreadyExists(f"a client CA named {name} is trusted already")
        settings.client_cas.append(
            pb.ClientCa(name=name, pem=pem.strip() + "\n", added_ms=now_ms())
        )

    return JSONResponse(settings_json(await change_settings(ctx, edit)), status_code=201)


async def remove_client_ca(request: Request, ctx: Context) -> Response:
    ctx.admin()
    ctx.full_credential("change how the registry signs people in")
    name = request.path_params["name"]

    def edit(settings: pb.AuthSettings) -> None:
        kept = [ca for ca in settings.client_cas if ca.name != name]
        if len(kept) == len(settings.client_cas):
            raise NotFound(f"no client CA named {name}")
        del settings.client_cas[:]
        settings.client_cas.extend(kept)

    return JSONResponse(settings_json(await change_settings(ctx, edit)))


async def set_client_certificates(request: Request, ctx: Context) -> Response:
    """{"identity": "cn"|"email"|"dns", "revoke": [serials], "crl_pem": PEM or ""}"""
    ctx.admin()
    ctx.full_credential("change how the registry signs people in")
    body = await read_body(request)
    identity, crl, revoke = body.get("identity"), body.get("crl_pem"), body.get("revoke", [])
    if identity is not None and identity not in directory.IDENTITIES:
        raise InvalidInput(f"identity is one of {', '.join(directory.IDENTITIES)}")
    if crl is not None and (not isinstance(crl, str) or len(crl) > 1 << 20):
        raise InvalidInput("crl_pem must be a PEM CRL (at most 1 MiB), or empty")
    if crl:
        client_certs.parse_crl(crl)
    if not isinstance(revoke, list) or not all(
        isinstance(x, str) and _SERIAL.fullmatch(x.lower().removeprefix("0x")) for x in revoke
    ):
        raise InvalidInput("revoke is a list of certificate serial numbers in hex")

    def edit(settings: pb.AuthSettings) -> None:
        if identity is not None:
            settings.certificate_identity = identity
        if crl is not None:
            settings.crl_pem = crl
        for serial in revoke:
            serial = serial.lower().removeprefix("0x").lstrip("0") or "0"
            if serial not in settings.revoked_serials:
                settings.revoked_serials.append(serial)
        if len(settings.revoked_serials) > 10_000:
            raise InvalidInput("over 10,000 revoked serials: publish a CRL instead")

    return JSONResponse(settings_json(await change_settings(ctx, edit)))


async def set_team_group(request: Request, ctx: Context) -> Response:
    org, team = request.path_params["name"], request.path_params["team"]
    ctx.owner_of(org)
    body = await read_body(request)
    group = body.get("group_dn")
    if not isinstance(group, str) or len(group) > 1024:
        raise InvalidInput("group_dn must be a DN, or empty to manage the team here")
    await ctx.change(
        set_team_directory_group=pb.SetTeamDirectoryGroup(org=org, team=team, group_dn=group)
    )
    return JSONResponse({"org": org, "team": team, "group_dn": group})


ROUTES = [
    Route("/api/v0/auth/settings", endpoint(get_settings), methods=["GET"]),
    Route("/api/v0/auth/mode", endpoint(set_mode), methods=["PUT"]),
    Route("/api/v0/auth/ldap", endpoint(set_ldap), methods=["PUT"]),
    Route("/api/v0/auth/ldap/test", endpoint(test_ldap), methods=["POST"]),
    Route("/api/v0/auth/ldap/sync", endpoint(sync_now), methods=["POST"]),
    Route("/api/v0/auth/ldap/sync", endpoint(last_sync), methods=["GET"]),
    Route("/api/v0/auth/client-cas", endpoint(add_client_ca), methods=["POST"]),
    Route("/api/v0/auth/client-cas/{name}", endpoint(remove_client_ca), methods=["DELETE"]),
    Route("/api/v0/auth/client-certificates", endpoint(set_client_certificates), methods=["PUT"]),
    Route(
        "/api/v0/accounts/{name}/teams/{team}/directory-group",
        endpoint(set_team_group),
        methods=["PUT"],
    ),
]
