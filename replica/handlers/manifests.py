"""GET, HEAD, PUT and DELETE of /v2/<name>/manifests/<reference>."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from consensus import policies
from replica import manifests
from replica.context import context
from replica.errors import (
    API_HEADERS,
    Denied,
    ManifestInvalid,
    ManifestUnknown,
    RegistryError,
)
from replica.names import check_reference
from replica.registry import Registry
from replica.scan.pull_policy import check_pull

# Clients that do not list these in Accept cannot parse them (distribution's rule):
# Docker types are always served, OCI types only to clients that ask for them.
_NEEDS_ACCEPT = (manifests.OCI_MANIFEST, manifests.OCI_INDEX)


async def get(registry: Registry, request: Request, name: str, reference: str) -> Response:
    try:
        check_reference(reference)
    except RegistryError:
        # As distribution answers: a reference that cannot exist is simply not found.
        raise ManifestUnknown(detail={"reference": reference[:200]}) from None
    manifest = await registry.manifest(name, reference)
    # Clients such as skopeo send one Accept line per media type.
    accept = ",".join(request.headers.getlist("accept"))
    if (
        accept
        and manifest.media_type in _NEEDS_ACCEPT
        and not _accepts(accept, manifest.media_type)
    ):
        raise ManifestUnknown(
            f"{manifest.media_type} found, but the Accept header does not allow it"
        )
    headers = {
        **API_HEADERS,
        "Docker-Content-Digest": manifest.digest,
        "ETag": f'"{manifest.digest}"',
        "Content-Type": manifest.media_type,
    }
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(manifest.body))
        return Response(status_code=200, headers=headers)
    rules = registry.state.view(policies.policy, name)  # one read for both policies
    claims = getattr(request.state, "claims", None)
    user = claims.subject if claims is not None else ""
    try:
        check_pull(registry.state, rules, name, manifest.digest)
        context(request).signed_tags.check_pull(rules, name, reference, manifest.digest, user)
    except Denied as refused:
        context(request).refusals.note(name, reference, manifest.digest, user, refused.message)
        raise
    return Response(manifest.body, status_code=200, headers=headers)


def _accepts(accept: str, media_type: str) -> bool:
    for item in accept.split(","):
        value = item.split(";", 1)[0].strip()
        if value in (media_type, "*/*", "application/*"):
            return True
    return False


async def put(registry: Registry, request: Request, name: str, reference: str) -> Response:
    check_reference(reference)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > manifests.MAX_MANIFEST_BYTES:
        raise _too_big()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > manifests.MAX_MANIFEST_BYTES:
            raise _too_big()
    claims = getattr(request.state, "claims", None)
    command = await registry.put_manifest(
        name,
        reference,
        request.headers.get("content-type", ""),
        bytes(body),
        claims.subject if claims is not None else "",
    )
    headers = {
        **API_HEADERS,
        "Location": f"/v2/{name}/manifests/{command.digest}",
        "Docker-Content-Digest": command.digest,
    }
    if command.subject_digest:
        headers["OCI-Subject"] = command.subject_digest
    return Response(status_code=201, headers=headers)


def _too_big() -> ManifestInvalid:
    return ManifestInvalid(f"manifest larger than {manifests.MAX_MANIFEST_BYTES} bytes", status=413)


async def delete(registry: Registry, request: Request, name: str, reference: str) -> Response:
    check_reference(reference)
    await registry.delete_manifest(name, reference)
    return Response(status_code=202, headers=API_HEADERS)
