"""A repository's tags in the management API, with what signs them.

GET /api/v0/repositories/{namespace}/{repo}/tags?n=100&last=TAG   its readers: a page
    of tags, each with its digest, who pushed it when, and its signed status
GET /api/v0/repositories/{namespace}/{repo}/tags/{tag}            its readers: one tag,
    with every signature: content trust's per GUN and role (valid, and whether the
    signed digest is still the tag's) and those pushed as OCI referrers

A tag is `signed` when a valid content-trust signature names its current digest.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import accounts, policies
from proto import commands_pb2 as pb
from replica.api.accounts import Context, endpoint
from replica.auth import permissions
from replica.context import context
from replica.errors import InvalidInput, NotFound
from replica.names import check_name, is_tag
from replica.trust.status import TrustSignature, referrer_signatures, signers_of, stale

_PAGE = 100
_MAX_PAGE = 1000


def _repository(request: Request, ctx: Context) -> str:
    p = request.path_params
    name = check_name(f"{p['namespace']}/{p['repo']}")
    if "pull" not in ctx.view(permissions.actions, ctx.caller, name):
        raise NotFound(f"no repository {name} that you may read")
    return name


def signed_json(found: list[TrustSignature], digest: str) -> dict[str, Any]:
    signers = signers_of(found, digest)
    return {
        "signed": bool(signers),
        "signers": signers,
        "stale": stale(found, digest),
        "trust": [
            {
                "gun": s.gun,
                "role": s.role,
                "digest": s.digest,
                "valid": s.valid,
                "matches": s.digest == digest,
            }
            for s in found
        ],
    }


async def list_tags(request: Request, ctx: Context) -> Response:
    name = _repository(request, ctx)
    try:
        n = int(request.query_params.get("n", _PAGE))
    except ValueError:
        raise InvalidInput("n is a whole number") from None
    n = max(1, min(n, _MAX_PAGE))
    last = request.query_params.get("last", "")
    registry = ctx.registry
    tags = await registry.tags(name, n + 1, last)
    signatures = context(request).signed_tags.signatures(name)
    rows = []
    for tag in tags[:n]:
        row = _tag_json(ctx, name, tag, signatures.get(tag, []))
        if row is not None:
            rows.append(row)
    return JSONResponse({"tags": rows, "next": tags[n - 1] if len(tags) > n else None})


def _tag_json(
    ctx: Context, name: str, tag: str, signatures: list[TrustSignature]
) -> dict[str, Any] | None:
    state = ctx.registry.state
    digest = state.resolve(name, tag)
    manifest = state.manifest(name, digest) if digest else None
    if digest is None or manifest is None:
        return None
    record = ctx.view(_record, name, digest)
    return {
        "name": tag,
        "digest": digest,
        "media_type": manifest.media_type,
        "pushed_at_ms": record.get("pushed_at_ms"),
        "pushed_by": record.get("pushed_by") or None,
        **signed_json(signatures, digest),
    }


def _record(txn: Any, name: str, digest: str) -> dict[str, Any]:
    raw = txn.get(accounts.key(b"M", name, digest))
    if raw is None:
        return {}
    record = pb.ManifestRecord.FromString(bytes(raw))
    return {"pushed_at_ms": record.pushed_at_ms, "pushed_by": record.pushed_by}


async def get_tag(request: Request, ctx: Context) -> Response:
    name = _repository(request, ctx)
    tag = request.path_params["tag"]
    if not is_tag(tag):
        raise InvalidInput(f"{tag[:130]!r} is not a tag")
    await ctx.registry.fresh()
    signatures = context(request).signed_tags.signatures(name).get(tag, [])
    row = _tag_json(ctx, name, tag, signatures)
    if row is None:
        raise NotFound(f"{name} has no tag {tag}")
    row["other_signatures"] = referrer_signatures(ctx.registry.state, name, row["digest"])
    rules = ctx.view(policies.policy, name)
    row["signed_only_policy"] = {
        "on": rules.signed_only,
        "accepted_signers": list(rules.accepted_signers),
    }
    return JSONResponse(row)


ROUTES = [
    Route("/api/v0/repositories/{namespace}/{repo}/tags", endpoint(list_tags), methods=["GET"]),
    Route("/api/v0/repositories/{namespace}/{repo}/tags/{tag}", endpoint(get_tag), methods=["GET"]),
]
