"""Webhooks in the management API.

    GET    /api/v0/webhooks                       the webhooks you manage
    POST   /api/v0/webhooks     {scope, url, events, secret, ca_pem, allow_private, active}
    GET    /api/v0/webhooks/{id}                  with its lease holder and delivery log
    PATCH  /api/v0/webhooks/{id}                  the same keys, those given replace
    DELETE /api/v0/webhooks/{id}
    POST   /api/v0/webhooks/{id}/test             deliver a ping now, from this replica
    POST   /api/v0/webhooks/{id}/deliveries/{event}/redeliver

Scope "" (every repository: administrators), "ns/" (a namespace: its owners), or
"ns/name" (a repository: its administrators). The same records hold mirrors and
proxies, with credentials for the other registry ("username", "password": kept sealed):
- a push mirror ({"kind": "push_mirror", "scope": "ns/name", "url":
  "https://other.example/ns/name", "tag_pattern"}) copies each tag pushed to the
  repository to the other registry; its log is the status per tag;
- a pull mirror ({"kind": "pull_mirror", "scope": "ns/name", "url":
  "https://other.example/ns/name", "tag_pattern", "interval_s"}) copies in the other
  repository's new or moved tags every interval_s (default 300); its log, per tag;
- a proxy ({"kind": "proxy", "scope": "ns/", "url": "https://upstream.example[/prefix]",
  "interval_s"}: administrators) makes the namespace a read-through cache of the
  upstream; a cached tag is checked upstream again after interval_s (default 3600). Reaching
loopback, private or other internal addresses (`allow_private`) is for administrators
only. A secret not given is made and shown once; it is kept sealed, never shown again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import events, webhooks
from proto import commands_pb2 as pb
from replica.api.accounts import Context, endpoint, valid_name
from replica.api.json_body import read_body
from replica.auth import permissions
from replica.context import context
from replica.errors import Denied, InvalidInput, NameInvalid, NotFound
from replica.mirror.proxy import PROXY, upstream_of
from replica.mirror.pull import MIN_INTERVAL_S, PULL_MIRROR
from replica.mirror.push import PUSH_MIRROR
from replica.mirror.remote import RemoteError, split_target
from replica.names import check_name
from replica.webhooks.deliverer import Deliverer
from replica.webhooks.delivery import encode, payload, send
from replica.webhooks.targets import TargetRefused, resolve

_KEYS = {
    "scope", "url", "events", "secret", "ca_pem", "allow_private", "active",
    "kind", "username", "password", "tag_pattern", "interval_s",
}  # fmt: skip
_KINDS = {"webhook": "", PUSH_MIRROR: PUSH_MIRROR, PULL_MIRROR: PULL_MIRROR, PROXY: PROXY}


def _scope(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise InvalidInput('scope is "", "namespace/" or "namespace/repository"')
    if value.endswith("/"):
        return valid_name(value[:-1], "the scope's namespace") + "/"
    try:
        check_name(value)
    except NameInvalid:
        raise InvalidInput(f"{value!r} is not a repository name") from None
    return value


def manages(txn: Any, caller: str, scope: str) -> bool:
    """Whether `caller` manages the webhooks, mirrors and proxies of `scope`."""
    if permissions.is_admin(txn, caller):
        return True
    if not scope:
        return False
    if scope.endswith("/"):
        namespace = scope[:-1]
        return caller == namespace or bool(permissions.manages_org(txn, caller, namespace))
    return "delete" in permissions.actions(txn, caller, scope)


def _manages(ctx: Context, scope: str) -> bool:
    return bool(ctx.view(manages, ctx.signed_in(), scope))


def _hook(ctx: Context, webhook_id: str) -> pb.Webhook:
    hook = ctx.view(webhooks.webhook, webhook_id)
    if hook is None or not _manages(ctx, hook.scope):
        raise NotFound(f"no webhook {webhook_id} that you manage")
    return hook  # type: ignore[no-any-return]


def _json(ctx: Context, hook: pb.Webhook, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": hook.id,
        "scope": hook.scope,
        "url": hook.url,
        "events": list(hook.event_types),
        "active": hook.active,
        "allow_private": hook.allow_private,
        "ca_pem_set": bool(hook.ca_pem),
        "created_by": hook.created_by,
        "created_ms": hook.created_ms,
        "kind": hook.kind or "webhook",
    }
    if hook.kind:
        out.update(username=hook.username)
    if hook.kind in (PUSH_MIRROR, PULL_MIRROR):
        out.update(tag_pattern=hook.tag_pattern or "*")
    if hook.kind in (PULL_MIRROR, PROXY):
        out.update(interval_s=hook.interval_s)
    if full:
        lease = ctx.view(webhooks.lease, hook.id)
        out["delivered_by"] = lease.replica_id if lease else None
        out["settled_event"] = ctx.view(webhooks.settled, hook.id)
        out["deliveries"] = [
            {
                "event": d.event, "status": d.status, "code": d.code, "attempts": d.attempts,
                "at_ms": d.at_ms, "replica": d.replica_id, "millis": d.millis,
                "excerpt": d.excerpt, "tag": d.tag,
            }
            for d in ctx.view(webhooks.deliveries, hook.id)
        ]  # fmt: skip
    return out


def _deliverer(request: Request) -> Deliverer:
    found = context(request).webhooks
    if found is None:
        raise NotFound("webhooks need the cluster secret on this replica")
    return found


async def _apply(request: Request, ctx: Context, hook: pb.Webhook, body: dict[str, Any]) -> str:
    """Put the body's keys in `hook`; the secret made if one was needed (else "")."""
    unknown = set(body) - _KEYS
    if unknown:
        raise InvalidInput(f"unknown keys: {', '.join(sorted(unknown))}")
    if "scope" in body:
        hook.scope = _scope(body["scope"])
    if not _manages(ctx, hook.scope):
        raise Denied("you do not manage webhooks of this scope")
    if "url" in body:
        if not isinstance(body["url"], str):
            raise InvalidInput("url must be a string")
        hook.url = body["url"].strip()
    if "events" in body:
        kinds = body["events"]
        if not isinstance(kinds, list) or not set(kinds) <= set(events.TYPES):
            raise InvalidInput(f"events is a list of {', '.join(events.TYPES)} (empty: all)")
        del hook.event_types[:]
        hook.event_types.extend(sorted(set(kinds)))
    for flag in ("active", "allow_private"):
        if flag in body:
            if not isinstance(body[flag], bool):
                raise InvalidInput(f"{flag} must be true or false")
            setattr(hook, flag, body[flag])
    if "allow_private" in body and body["allow_private"] and not ctx.is_admin():
        raise Denied("only administrators let a webhook reach internal addresses")
    if "ca_pem" in body:
        if not isinstance(body["ca_pem"], str) or len(body["ca_pem"]) > 64 * 1024:
            raise InvalidInput("ca_pem must be a PEM bundle (at most 64 KiB)")
        hook.ca_pem = body["ca_pem"]
    if "kind" in body and body["kind"] not in _KINDS:
        raise InvalidInput(f"kind is one of {', '.join(_KINDS)}")
    if "kind" in body:
        hook.kind = _KINDS[body["kind"]]
    if hook.kind:
        return _mirror(request, ctx, hook, body)
    made = ""
    secret = body.get("secret")
    if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 256):
        raise InvalidInput("secret must be 16 to 256 characters")
    if secret or not hook.sealed_secret:
        made = "" if secret else secrets.token_urlsafe(32)
        hook.sealed_secret = _deliverer(request).seal((secret or made).encode())
    return made


async def _reachable(hook: pb.Webhook) -> None:
    try:
        await asyncio.to_thread(resolve, hook.url, hook.allow_private)
    except TargetRefused as e:
        raise InvalidInput(f"the URL is refused: {e}") from None


def _mirror(request: Request, ctx: Context, hook: pb.Webhook, body: dict[str, Any]) -> str:
    """The keys of a mirror or a proxy: a repository (a proxy: a namespace) here and
    one on another registry, with credentials there."""
    try:
        if hook.kind == PROXY:
            upstream_of(hook.url)
        else:
            split_target(hook.url)
    except (RemoteError, ValueError) as e:
        raise InvalidInput(str(e)) from None
    if hook.kind == PROXY and not (hook.scope.endswith("/") and ctx.is_admin()):
        raise InvalidInput("a proxy's scope is a namespace (ns/), set by an administrator")
    if hook.kind != PROXY and (not hook.scope or hook.scope.endswith("/")):
        raise InvalidInput("a mirror's scope is one repository (namespace/name)")
    del hook.event_types[:]
    if hook.kind == PUSH_MIRROR:
        hook.event_types.append("push")
    for key in ("username", "tag_pattern"):
        if key in body:
            if not isinstance(body[key], str) or len(body[key]) > 256:
                raise InvalidInput(f"{key} must be a string")
            setattr(hook, key, body[key])
    if "interval_s" in body:
        value = body["interval_s"]
        if not isinstance(value, int) or not MIN_INTERVAL_S <= value <= 30 * 86400:
            raise InvalidInput(f"interval_s is {MIN_INTERVAL_S} to {30 * 86400} seconds")
        hook.interval_s = value
    if "password" in body:
        if not isinstance(body["password"], str) or len(body["password"]) > 4096:
            raise InvalidInput("password must be a string")
        hook.sealed_password = _deliverer(request).seal(body["password"].encode())
    return ""


async def list_hooks(request: Request, ctx: Context) -> Response:
    ctx.signed_in()
    mine = [h for h in ctx.view(webhooks.webhooks) if _manages(ctx, h.scope)]
    return JSONResponse({"webhooks": [_json(ctx, h) for h in mine]})


async def create_hook(request: Request, ctx: Context) -> Response:
    caller = ctx.signed_in()
    body = await read_body(request)
    if "url" not in body:
        raise InvalidInput("url is required")
    hook = pb.Webhook(
        id=secrets.token_hex(8), active=True, created_by=caller, created_ms=int(time.time() * 1000)
    )
    made = await _apply(request, ctx, hook, body)
    await _reachable(hook)
    await ctx.change(put_webhook=pb.PutWebhook(webhook=hook, create_only=True))
    out = _json(ctx, hook)
    if made:
        out["secret"] = made  # shown this once
    return JSONResponse(out, status_code=201)


async def get_hook(request: Request, ctx: Context) -> Response:
    return JSONResponse(_json(ctx, _hook(ctx, request.path_params["id"]), full=True))


async def update_hook(request: Request, ctx: Context) -> Response:
    hook = _hook(ctx, request.path_params["id"])
    made = await _apply(request, ctx, hook, await read_body(request))
    await _reachable(hook)
    await ctx.change(put_webhook=pb.PutWebhook(webhook=hook))
    return JSONResponse({**_json(ctx, hook), **({"secret": made} if made else {})})


async def delete_hook(request: Request, ctx: Context) -> Response:
    hook = _hook(ctx, request.path_params["id"])
    await ctx.change(delete_webhook=pb.DeleteWebhook(id=hook.id))
    return Response(status_code=204)


async def test_hook(request: Request, ctx: Context) -> Response:
    """A ping delivered now by this replica; the answer is returned, not recorded."""
    hook = _hook(ctx, request.path_params["id"])
    if hook.kind:
        raise InvalidInput("a ping is for webhooks; a mirror's or proxy's log shows its work")
    deliverer = _deliverer(request)
    ping = pb.Event(type="ping", at_ms=int(time.time() * 1000), actor=ctx.caller or "")
    body = encode(payload(hook, ping, deliverer.host))
    outcome = await asyncio.to_thread(
        send, hook, deliverer.open_secret(hook), "ping", f"{hook.id}:ping", body
    )
    return JSONResponse(
        {
            "ok": outcome.ok,
            "code": outcome.code,
            "millis": outcome.millis,
            "excerpt": outcome.excerpt,
        }  # fmt: skip
    )


async def redeliver(request: Request, ctx: Context) -> Response:
    hook = _hook(ctx, request.path_params["id"])
    if hook.kind in (PULL_MIRROR, PROXY):
        raise InvalidInput("a pull mirror or proxy has no events to deliver again")
    raw = request.path_params["event"]
    if not raw.isdigit() or ctx.view(events.by_id, int(raw)) is None:
        raise NotFound(f"no event {raw} (it may be older than the retention)")
    await ctx.change(record_deliveries=pb.RecordDeliveries(id=hook.id, redeliver=[int(raw)]))
    return JSONResponse({"event": int(raw), "status": "pending"}, status_code=202)


ROUTES = [
    Route("/api/v0/webhooks", endpoint(list_hooks), methods=["GET"]),
    Route("/api/v0/webhooks", endpoint(create_hook), methods=["POST"]),
    Route("/api/v0/webhooks/{id}", endpoint(get_hook), methods=["GET"]),
    Route("/api/v0/webhooks/{id}", endpoint(update_hook), methods=["PATCH"]),
    Route("/api/v0/webhooks/{id}", endpoint(delete_hook), methods=["DELETE"]),
    Route("/api/v0/webhooks/{id}/test", endpoint(test_hook), methods=["POST"]),
    Route(
        "/api/v0/webhooks/{id}/deliveries/{event}/redeliver",
        endpoint(redeliver),
        methods=["POST"],
    ),
]
