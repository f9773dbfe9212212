"""Blob uploads: POST (monolithic, session start, mount), PATCH, PUT, GET status, DELETE."""

from __future__ import annotations

import asyncio
import re

from starlette.requests import Request
from starlette.responses import Response

from replica.auth.service import AuthService
from replica.blobs import ingest
from replica.blobs.streams import receive_into
from replica.blobs.uploads import Upload
from replica.context import context
from replica.errors import API_HEADERS, BlobUploadInvalid, DigestInvalid, RangeInvalid, Unavailable
from replica.names import check_digest, check_name
from replica.registry import Registry

_CONTENT_RANGE = re.compile(r"(?:bytes )?(\d+)-(\d+)(?:/\d+|/\*)?")


def _session_headers(name: str, upload: Upload) -> dict[str, str]:
    size = upload.size
    return {
        **API_HEADERS,
        "Location": f"/v2/{name}/blobs/uploads/{upload.id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload.id,
    }


def _created(name: str, digest: str) -> Response:
    return Response(
        status_code=201,
        headers={
            **API_HEADERS,
            "Location": f"/v2/{name}/blobs/{digest}",
            "Docker-Content-Digest": digest,
        },
    )


async def start(registry: Registry, request: Request, name: str) -> Response:
    params = request.query_params
    mount, source = params.get("mount"), params.get("from")
    auth: AuthService | None = context(request).auth
    if mount and source:
        check_digest(mount)
        check_name(source)
        # Without pull on the source, the client gets a plain upload session, as
        # distribution answers: it never learns whether the blob is there.
        allowed = auth is None or auth.allows(request, source, "pull")
        if allowed and await registry.mount(name, mount, source):
            return _created(name, mount)
    digest = params.get("digest")
    if digest:
        check_digest(digest)
        size, copies = await ingest.whole(
            registry.replication,
            lambda writer, mirror: receive_into(request, writer, mirror),
            digest,
            _content_length(request),
        )
        await registry.link_blob(name, digest, size, copies)
        return _created(name, digest)
    claims = getattr(request.state, "claims", None)
    # Counted per account; without authentication, per client address.
    owner = (
        claims.subject
        if claims is not None and claims.subject
        else f"@{request.client.host if request.client else ''}"
    )
    upload = registry.uploads.create(name, owner)
    await upload.open()
    return Response(status_code=202, headers=_session_headers(name, upload))


async def patch(registry: Registry, request: Request, name: str, session_id: str) -> Response:
    upload = registry.uploads.get(name, session_id)
    async with upload.lock:
        await upload.open()
        header = request.headers.get("content-range")
        if header:
            m = _CONTENT_RANGE.fullmatch(header.strip())
            if not m:
                raise BlobUploadInvalid(
                    "malformed Content-Range", detail={"Content-Range": header[:100]}
                )
            first, last = int(m.group(1)), int(m.group(2))
            if first != upload.size or last < first:
                # Out of order: tell the client where the upload stands.
                raise RangeInvalid(
                    "chunk does not start where the upload ends",
                    headers=_session_headers(name, upload),
                )
        before = upload.size
        try:
            received = await _receive(registry, request, upload)
        finally:
            if upload.id in registry.uploads:  # not ended by a failure
                # Between requests a session may go on on another replica.
                await asyncio.to_thread(upload.writer.checkpoint)
        expected = _content_length(request)
        if expected is not None and received != expected:
            raise BlobUploadInvalid(
                "body shorter than Content-Length",
                detail={"expected": expected, "received": received},
            )
        if header and received != last - first + 1:
            raise BlobUploadInvalid(
                "body length differs from Content-Range",
                detail={"range": header[:100], "received": received, "offset": before},
            )
        return Response(status_code=202, headers=_session_headers(name, upload))


async def put(registry: Registry, request: Request, name: str, session_id: str) -> Response:
    upload = registry.uploads.get(name, session_id)
    digest = request.query_params.get("digest")
    if not digest:
        raise DigestInvalid("the digest query parameter is required to finish an upload")
    check_digest(digest)
    async with upload.lock:
        await upload.open()
        if upload.size == 0:
            # The whole blob in this PUT (oras, skopeo): with its digest known from the
            # start, object storage receives it straight under its final key.
            try:
                size, copies = await ingest.whole(
                    registry.replication,
                    lambda writer, mirror: receive_into(request, writer, mirror),
                    digest,
                    _content_length(request),
                )
            finally:
                registry.uploads.remove(upload)
        else:
            await _receive(registry, request, upload)
            size, copies = await ingest.finish_session(
                registry.replication, registry.uploads, upload, digest
            )
        await registry.link_blob(name, digest, size, copies)
    return _created(name, digest)


async def status(registry: Registry, request: Request, name: str, session_id: str) -> Response:
    upload = registry.uploads.get(name, session_id)
    async with upload.lock:
        await upload.open()
    return Response(status_code=204, headers=_session_headers(name, upload))


async def cancel(registry: Registry, request: Request, name: str, session_id: str) -> Response:
    upload = registry.uploads.get(name, session_id)
    async with upload.lock:
        registry.uploads.remove(upload)
    return Response(status_code=204, headers=API_HEADERS)


async def _receive(registry: Registry, request: Request, upload: Upload) -> int:
    try:
        mirror = ingest.session_mirror(registry.replication, upload)
        return await receive_into(request, upload.writer, mirror)
    except Unavailable:
        # The session's file (or object) lacks bytes it was sent: it cannot go on.
        registry.uploads.remove(upload)
        raise


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None
