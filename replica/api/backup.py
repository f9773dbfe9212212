"""Backups, with the cluster's credentials.

GET /api/v0/backup             a consistent snapshot of the metadata, as a file to download
GET /api/v0/backup/blobs       every blob record, a page at a time (?after=DIGEST&n=N):
                               what `qreg backup` and `qreg storage migrate` copy
GET /api/v0/backup/blobs/{digest}  one blob's bytes, for `qreg backup --with-blobs`: from this
                               replica's disk, fetched from a holder first if need be
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from consensus import blob_records, snapshot
from replica.blobs.peer_fetch import copy_from_holders
from replica.blobs.streams import FileRangeResponse, StreamingChunks, store_range_response
from replica.context import context
from replica.errors import BlobUnknown, InvalidInput, RegistryError
from replica.names import check_digest
from replica.peers import require_internal
from replica.registry import Registry


async def download(request: Request) -> Response:
    # Until accounts exist, the cluster secret is the credential.
    require_internal(request)
    registry: Registry = context(request).registry
    await registry.fresh()
    fd, path = tempfile.mkstemp(prefix="backup-", dir=os.path.dirname(registry.state.path))
    os.close(fd)
    applied = await asyncio.to_thread(snapshot.backup_to, path, registry.state, [])
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"qreg-backup-{applied}.qreg",
        headers={"Qreg-Applied-Index": str(applied)},
        background=BackgroundTask(os.unlink, path),
    )


MAX_PAGE = 10_000


async def blob_list(request: Request) -> Response:
    require_internal(request)
    after = request.query_params.get("after", "")
    if after:
        check_digest(after)
    try:
        n = min(max(int(request.query_params.get("n", MAX_PAGE)), 1), MAX_PAGE)
    except ValueError:
        raise InvalidInput("n is a number of blobs") from None
    registry: Registry = context(request).registry
    await registry.fresh()
    page = registry.state.view(blob_records.after, after, n)
    return JSONResponse(
        {"blobs": [[d, size] for d, size in page], "next": page[-1][0] if len(page) == n else None}
    )


async def blob(request: Request) -> FileRangeResponse | StreamingChunks:
    require_internal(request)
    digest = check_digest(request.path_params["digest"])
    registry: Registry = context(request).registry
    size = registry.store.stat(digest)
    if size is None:
        seen = registry.replication.collections_seen()
        size = await copy_from_holders(registry.replication, digest)
        if size is not None:  # a copy here now: recorded, or garbage collection removes it
            with contextlib.suppress(RegistryError):
                await registry.replication.record_copy(digest, size, seen)
    if size is None:
        raise BlobUnknown("no replica holds this blob", detail={"digest": digest})
    return await store_range_response(
        registry.store,
        digest,
        0,
        size,
        200,
        {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest},
    )
