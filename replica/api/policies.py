"""Repository policies, namespace quotas and storage usage in the management API.

GET  /api/v0/repositories/{namespace}/{repo}/policy   its readers
PUT  /api/v0/repositories/{namespace}/{repo}/policy   its administrators:
     {"immutable_tags": true, "immutable_pattern": "v*",
      "vulnerabilities": {"block_severity": "high", "allowed": ["CVE-2023-5363"]},
      "signing": {"signed_only": true, "accepted_signers": ["targets/releases"]},
      "retention": {"keep_newest": 10, "max_age_days": 90,
                    "prune_pattern": "build-*", "keep_pattern": "release-*"}}
PUT  /api/v0/namespaces/{namespace}/quota              administrators: {"bytes": N} (0: none)
GET  /api/v0/usage                                     administrators: storage per
     repository (each blob once; what only it uses) and namespace, with quotas, and
     the cluster's total

Usage reads every manifest record: administrators only, and one count at a time is
shared for a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import policies, usage
from proto import commands_pb2 as pb
from replica.api.accounts import Context, endpoint, now_ms
from replica.api.json_body import read_body
from replica.auth import permissions
from replica.context import context
from replica.errors import Denied, InvalidInput, NotFound, RegistryError
from replica.names import check_name
from replica.trust.metadata import check_role

_USAGE_SHARED_S = 5.0


def policy_json(rules: pb.RepositoryPolicy) -> dict[str, Any]:
    return {
        "immutable_tags": rules.immutable_tags,
        "immutable_pattern": rules.immutable_pattern or None,
        "vulnerabilities": {
            "block_severity": rules.block_severity or None,
            "allowed": list(rules.allowed_vulnerabilities),
        },
        "signing": {
            "signed_only": rules.signed_only,
            "accepted_signers": list(rules.accepted_signers),
        },
        "retention": {
            "keep_newest": rules.keep_newest or None,
            "max_age_days": rules.max_age_days or None,
            "prune_pattern": rules.prune_pattern or None,
            "keep_pattern": rules.keep_pattern or None,
        },
    }


def _repository(request: Request) -> str:
    p = request.path_params
    return check_name(f"{p['namespace']}/{p['repo']}")


def _count(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 32:
        raise InvalidInput(f"{what} is a whole number of 0 or more, not {str(value)[:40]!r}")
    return value


def _pattern(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 128:
        raise InvalidInput(f"{what} is a glob of at most 128 characters (as 'v*' or 'build-?')")
    return value


async def get_policy(request: Request, ctx: Context) -> Response:
    name = _repository(request)
    if "pull" not in ctx.view(permissions.actions, ctx.caller, name):
        raise NotFound(f"no repository {name} that you may read")
    return JSONResponse(policy_json(ctx.view(policies.policy, name)))


async def set_policy(request: Request, ctx: Context) -> Response:
    name = _repository(request)
    if "delete" not in ctx.view(permissions.actions, ctx.signed_in(), name):
        raise Denied(f"only administrators of {name} may change its policies")
    body = await read_body(request)
    retention = body.get("retention") or {}
    if not isinstance(retention, dict):
        raise InvalidInput("retention is an object of rules")
    immutable = body.get("immutable_tags", False)
    if not isinstance(immutable, bool):
        raise InvalidInput("immutable_tags is true or false")
    vulnerabilities = body.get("vulnerabilities") or {}
    if not isinstance(vulnerabilities, dict):
        raise InvalidInput("vulnerabilities is an object: block_severity, allowed")
    block = vulnerabilities.get("block_severity") or ""
    if block not in ("", "critical", "high", "medium", "low"):
        raise InvalidInput("block_severity is critical, high, medium or low (or empty)")
    allowed = vulnerabilities.get("allowed") or []
    if (
        not isinstance(allowed, list)
        or not all(isinstance(a, str) and 0 < len(a) <= 100 for a in allowed)
        or len(allowed) > 1000
    ):
        raise InvalidInput("allowed is a list of vulnerability ids (at most 1,000)")
    signed_only, signers = _signing(body.get("signing") or {})
    rules = pb.RepositoryPolicy(
        repository=name,
        signed_only=signed_only,
        accepted_signers=signers,
        block_severity=block,
        allowed_vulnerabilities=allowed,
        immutable_tags=immutable,
        immutable_pattern=_pattern(body.get("immutable_pattern"), "immutable_pattern"),
        keep_newest=_count(retention.get("keep_newest"), "retention.keep_newest"),
        max_age_days=_count(retention.get("max_age_days"), "retention.max_age_days"),
        prune_pattern=_pattern(retention.get("prune_pattern"), "retention.prune_pattern"),
        keep_pattern=_pattern(retention.get("keep_pattern"), "retention.keep_pattern"),
    )
    await ctx.change(set_repository_policy=pb.SetRepositoryPolicy(policy=rules))
    return JSONResponse(policy_json(rules))


def _signing(value: Any) -> tuple[bool, list[str]]:
    """signing.signed_only, and the signer roles that count: "targets",
    "targets/releases", or a signer's name (as `docker trust signer add` calls them),
    which means its role "targets/<name>"."""
    if not isinstance(value, dict):
        raise InvalidInput("signing is an object: signed_only, accepted_signers")
    signed_only = value.get("signed_only", False)
    if not isinstance(signed_only, bool):
        raise InvalidInput("signing.signed_only is true or false")
    signers = value.get("accepted_signers") or []
    if not isinstance(signers, list) or len(signers) > 100:
        raise InvalidInput("signing.accepted_signers is a list of signers (at most 100)")
    roles = []
    for signer in signers:
        if not isinstance(signer, str) or not signer:
            raise InvalidInput("a signer is a role (targets/releases) or a signer's name")
        role = (
            signer if signer == "targets" or signer.startswith("targets/") else f"targets/{signer}"
        )
        try:
            roles.append(check_role(role))
        except RegistryError:
            raise InvalidInput(f"{signer[:60]!r} is not a signer's name or role") from None
    return signed_only, sorted(set(roles))


async def set_quota(request: Request, ctx: Context) -> Response:
    ctx.admin()
    namespace = request.path_params["namespace"]
    value = (await read_body(request)).get("bytes")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
        raise InvalidInput(f"bytes is the quota in bytes (0: none), not {str(value)[:40]!r}")
    await ctx.change(set_namespace_quota=pb.SetNamespaceQuota(namespace=namespace, bytes=value))
    return JSONResponse({"namespace": namespace, "quota_bytes": value or None, "at_ms": now_ms()})


async def get_usage(request: Request, ctx: Context) -> Response:
    ctx.admin()
    registry = ctx.registry
    await registry.fresh()
    shared = context(request).shared
    lock = shared.setdefault("usage_lock", asyncio.Lock())
    async with lock:  # one count at a time, shared by whoever asks meanwhile
        cached = shared.get("usage")
        if cached is None or time.monotonic() - cached[0] > _USAGE_SHARED_S:
            counted = await asyncio.to_thread(registry.state.view, usage.usage)
            shared["usage"] = cached = (time.monotonic(), counted)
    found: usage.Usage = cached[1]
    quotas = ctx.view(policies.quotas)
    return JSONResponse(
        {
            "total_bytes": found.total_bytes,
            "total_blobs": found.total_blobs,
            "namespaces": [
                {"name": ns, "bytes": found.namespaces.get(ns, 0), "quota_bytes": quotas.get(ns)}
                for ns in sorted(set(found.namespaces) | set(quotas))
            ],
            "repositories": [
                {"name": r, "bytes": b, "exclusive_bytes": found.exclusive[r]}
                for r, b in sorted(found.repositories.items())
            ],
        }
    )


ROUTES = [
    Route("/api/v0/repositories/{namespace}/{repo}/policy", endpoint(get_policy), methods=["GET"]),
    Route("/api/v0/repositories/{namespace}/{repo}/policy", endpoint(set_policy), methods=["PUT"]),
    Route("/api/v0/namespaces/{namespace}/quota", endpoint(set_quota), methods=["PUT"]),
    Route("/api/v0/usage", endpoint(get_usage), methods=["GET"]),
]
