"""GET, HEAD and DELETE of /v2/<name>/blobs/<digest>."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from replica.blobs.peer_fetch import PeerBlobResponse, fetch_to_disk
from replica.blobs.streams import store_range_response
from replica.cache_redirect import follows_redirects
from replica.context import context
from replica.errors import API_HEADERS, RangeInvalid
from replica.names import check_digest
from replica.registry import Registry

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


async def get(registry: Registry, request: Request, name: str, digest: str) -> object:
    check_digest(digest)
    size = await registry.blob_size(name, digest)
    headers = {
        **API_HEADERS,
        "Docker-Content-Digest": digest,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "ETag": f'"{digest}"',
    }
    start, length, status = 0, size, 200
    header = request.headers.get("range")
    if header:
        start, length = parse_range(header, size)
        status = 206
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    if request.method == "HEAD":
        headers["Content-Length"] = str(length)
        return Response(status_code=status, headers=headers)
    store = registry.store
    if store.shared:  # every replica reads the same bucket: no peer is asked
        # Only clients known to follow a 307 are sent to the bucket (as to caches; a
        # cache's own fetch is not one of them: it is served here).
        agent = request.headers.get("user-agent", "")
        follows = follows_redirects(agent, context(request).redirect_clients)
        url = store.redirect(digest) if follows else None
        if url is not None:  # the bytes go from the object store straight to the client
            redirect = {k: headers[k] for k in ("Docker-Content-Digest",)}
            return Response(status_code=307, headers={**API_HEADERS, **redirect, "Location": url})
        return await store_range_response(store, digest, start, length, status, headers)
    if store.stat(digest) is None:
        if header:  # a range of a blob only peers hold: fetch it whole first
            await fetch_to_disk(registry.replication, digest)
        else:
            headers["Content-Length"] = str(size)
            return PeerBlobResponse(registry.replication, digest, headers)
    return await store_range_response(store, digest, start, length, status, headers)


def parse_range(header: str, size: int) -> tuple[int, int]:
    m = _RANGE.fullmatch(header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise RangeInvalid(headers={"Content-Range": f"bytes */{size}"})
    if m.group(1) == "":  # suffix: the last N bytes
        length = min(int(m.group(2)), size)
        return size - length, length
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    end = min(end, size - 1)
    if start >= size or end < start:
        raise RangeInvalid(headers={"Content-Range": f"bytes */{size}"})
    return start, end - start + 1


async def delete(registry: Registry, request: Request, name: str, digest: str) -> Response:
    check_digest(digest)
    await registry.delete_blob(name, digest)
    return Response(status_code=202, headers=API_HEADERS)
