"""GET /api/v0/backup: a consistent snapshot of the metadata, as a file to download."""

from __future__ import annotations

import asyncio
import os
import tempfile

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from consensus import snapshot
from replica.errors import RegistryError
from replica.peers import require_internal
from replica.registry import Registry


async def download(request: Request) -> Response:
    # Until accounts exist, the cluster secret is the credential.
    try:
        require_internal(request)
    except RegistryError as e:
        return e.response()
    registry: Registry = request.app.state.registry
    await registry.fresh()
    fd, path = tempfile.mkstemp(prefix="backup-", dir=os.path.dirname(registry.state.path))
    os.close(fd)
    applied = await asyncio.to_thread(snapshot.backup_to, path, registry.state, [])
    return FileResponse(path, media_type="application/octet-stream",
                        filename=f"qreg-backup-{applied}.qreg",
                        headers={"Qreg-Applied-Index": str(applied)},
                        background=BackgroundTask(os.unlink, path))
