"""The cluster's own view of the metadata digests (divergence.py, qreg verify).

GET /_internal/state-digests   (cluster credentials) the latest (index, digest) pairs
GET /_internal/state-ranges    (cluster credentials) a digest per key range, recounted
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replica.context import context
from replica.divergence import recent_for_peers
from replica.peers import require_internal
from replica.registry import Registry


async def recent_digests(request: Request) -> Response:
    """This replica's latest state digests, for peers to compare with theirs."""
    require_internal(request)
    registry: Registry = context(request).registry
    return JSONResponse({"replica_id": registry.replica_id, "recent": recent_for_peers(registry)})


async def range_digests(request: Request) -> Response:
    """A digest per key range of the whole state (a full scan), for qreg verify."""
    require_internal(request)
    registry: Registry = context(request).registry
    applied, ranges = await asyncio.to_thread(registry.state.range_digests)
    # Recounted from what is on disk, not the running digest: rot shows here.
    recounted = sum(int(d, 16) for _, d in ranges.values()) % (1 << 256)
    return JSONResponse(
        {
            "replica_id": registry.replica_id,
            "applied_index": applied,
            "digest": f"{recounted:064x}",
            "ranges": ranges,
        }
    )
