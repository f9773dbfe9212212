"""The Notary v1 server API at the registry's address, as the `notary` and `docker`
clients call it:

    POST   /v2/GUN/_trust/tuf/                      publish (multipart, one file per role)   push
    GET    /v2/GUN/_trust/tuf/ROLE.json             current metadata                         pull
    GET    /v2/GUN/_trust/tuf/ROLE.SHA256.json      by checksum                              pull
    GET    /v2/GUN/_trust/tuf/VERSION.ROLE.json     by version                               pull
    GET    /v2/GUN/_trust/tuf/ROLE.key              the service's key (made if none)          push
    POST   /v2/GUN/_trust/tuf/ROLE.key              rotate it                                 admin
    DELETE /v2/GUN/_trust/tuf/                      delete the GUN's trust data               admin
    GET    /v2/GUN/_trust/changefeed                the GUN's changes                         pull
    GET    /v2/_trust/changefeed                    every GUN's changes the caller may pull

A GUN is the repository with the registry's host in front (docker's form); the
permissions are the repository's. Errors are Notary's codes in the registry's format.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import AsyncGenerator, Callable
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replica.auth.service import AuthService
from replica.bodies import read_limited
from replica.context import context
from replica.errors import (
    InvalidGun,
    InvalidInput,
    MalformedUpload,
    MetadataNotFound,
    NameInvalid,
    NoFilename,
    Unsupported,
)
from replica.names import repository_of_gun
from replica.trust.metadata import check_role
from replica.trust.service import TrustService

_TUF = re.compile(r"/v2/(.+)/_trust/tuf/(.*)")
_FEED = re.compile(r"/v2/(?:(.+)/)?_trust/changefeed")
_BY_VERSION = re.compile(r"([0-9]{1,10})\.(.+)")
_BY_CHECKSUM = re.compile(r"(.+)\.([0-9a-f]{64})")
MAX_UPLOAD = 16 * 1024 * 1024  # all roles of one publish
_MAX_FILES = 64
_FEED_LIMIT = 1000
_HEADERS = {"Cache-Control": "no-store"}


def matches(path: str) -> bool:
    return "/_trust/" in path


async def route(request: Request) -> Response:
    path = request.url.path
    m = _TUF.fullmatch(path)
    if m is not None:
        gun, repository = _gun(m.group(1))
        return await _tuf(request, gun, repository, m.group(2))
    m = _FEED.fullmatch(path)
    if m is not None and request.method == "GET":
        return await _changefeed(request, m.group(1))
    raise MetadataNotFound(detail={"path": path[:300]})


def _gun(gun: str) -> tuple[str, str]:
    try:
        return gun, repository_of_gun(gun)
    except NameInvalid:
        raise InvalidGun(detail={"gun": gun[:300]}) from None


def _service(request: Request) -> TrustService:
    service: TrustService | None = context(request).trust
    if service is None:
        raise Unsupported("content trust needs the cluster secret on this replica", status=404)
    return service


def _require(request: Request, gun: str, action: str) -> str:
    """The caller's account name ("" when anonymous or without authentication)."""
    auth: AuthService | None = context(request).auth
    if auth is None:
        return ""
    auth.require_trust(request, gun, action)
    claims = getattr(request.state, "claims", None)
    return claims.subject if claims is not None else ""


async def _tuf(request: Request, gun: str, repository: str, rest: str) -> Response:
    service = _service(request)
    method = request.method
    if rest == "" and method == "POST":
        actor = _require(request, gun, "push")
        uploads = await _uploads(request)
        await service.publish(gun, repository, uploads, actor)
        return JSONResponse({}, headers=_HEADERS)
    if rest == "" and method == "DELETE":
        actor = _require(request, gun, "delete")
        await service.delete(gun, repository, actor)
        return JSONResponse({}, headers=_HEADERS)
    if rest.endswith(".key") and method in ("GET", "POST"):
        _require(request, gun, "push" if method == "GET" else "delete")
        role = check_role(rest[: -len(".key")])
        key = await service.key(gun, repository, role, rotate=method == "POST")
        return JSONResponse(key, headers=_HEADERS)
    if rest.endswith(".json") and method in ("GET", "HEAD"):
        _require(request, gun, "pull")
        stem = rest[: -len(".json")]
        checksum, version = "", 0
        if m := _BY_VERSION.fullmatch(stem):
            version, stem = int(m.group(1)), m.group(2)
        elif m := _BY_CHECKSUM.fullmatch(stem):
            stem, checksum = m.group(1), m.group(2)
        body = await service.document(gun, stem, checksum=checksum, version=version)
        return Response(
            b"" if method == "HEAD" else body,
            headers={**_HEADERS, "Content-Length": str(len(body))},
            media_type="application/json",
        )
    raise MetadataNotFound(detail={"path": rest[:300]})


async def _uploads(request: Request) -> dict[str, bytes]:
    body = await read_limited(request, MAX_UPLOAD)

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        request.headers, stream(), max_files=_MAX_FILES, max_fields=0, max_part_size=MAX_UPLOAD
    )
    try:
        form = await parser.parse()
    except (MultiPartException, ValueError):
        raise MalformedUpload() from None
    uploads: dict[str, bytes] = {}
    try:
        for _, part in form.multi_items():
            if not isinstance(part, UploadFile):
                continue
            if not part.filename:
                raise NoFilename()
            role = check_role(part.filename.removesuffix(".json"))
            uploads[role] = await part.read()
    finally:
        await form.close()
    if not uploads:
        raise MalformedUpload("the upload has no files")
    return uploads


async def _changefeed(request: Request, gun: str | None) -> Response:
    service = _service(request)
    try:
        after = int(request.query_params.get("change_id", "0") or 0)
        records = int(request.query_params.get("records", "100") or 100)
    except ValueError:
        raise InvalidInput("change_id and records are whole numbers") from None
    limit = max(1, min(abs(records), _FEED_LIMIT))
    await service.registry.fresh()
    if gun is not None:
        _gun(gun)
        _require(request, gun, "pull")
        found = service.changes(gun, after, limit)
    else:
        may_pull = _pull_filter(request)
        found = [c for c in service.changes(None, after, _FEED_LIMIT) if may_pull(c["gun"])]
        found = found[:limit]
    return JSONResponse(
        {"count": len(found), "records": [_change(c) for c in found]}, headers=_HEADERS
    )


def _pull_filter(request: Request) -> Callable[[str], bool]:
    """Whether the caller may pull the repository a GUN names (its token checked once,
    as for the catalog)."""
    auth: AuthService | None = context(request).auth
    if auth is None or not auth.enabled:
        return lambda gun: True
    pullable = auth.pullable_by(request)

    def may_pull(gun: str) -> bool:
        try:
            repository = repository_of_gun(gun)
        except NameInvalid:
            return False
        return bool(auth.state.view(pullable, repository))

    return may_pull


def _change(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "ID": str(c["id"]),
        "CreatedAt": datetime.datetime.fromtimestamp(c["at_ms"] / 1000, datetime.UTC).isoformat(),
        "GUN": c["gun"],
        "Version": c["version"],
        "SHA256": c["sha256"],
        "Category": c["category"],
    }
