"""Blob upload sessions in progress, kept on disk apart from blobs.

Layout under the data directory:

    uploads/<session-id>/repository   the repository the session was opened for
    uploads/<session-id>/data         the bytes received so far

A session survives a restart of the process: its writer re-hashes `data` when it
is first touched again. A session id is `<owner replica id>.<32 hex>`: any
replica can tell which one holds the bytes. Only the hex part names a
directory, and it is checked before it touches a path.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import time

from replica.blob_mirror import PeerMirror
from replica.blobstore import BlobWriter
from replica.errors import BlobUploadUnknown

_SESSION_ID = re.compile(r"[a-f0-9]{32}")


def owner_of(session_id: str) -> str:
    """The replica that opened a session (and holds its bytes)."""
    return session_id.rsplit(".", 1)[0] if "." in session_id else ""
# Sessions untouched this long are abandoned: clients restart uploads anyway.
ABANDONED_AFTER_S = 7 * 24 * 3600


class Upload:
    def __init__(self, session_id: str, repository: str, directory: str) -> None:
        self.id = session_id
        self.repository = repository
        self.directory = directory
        self.lock = asyncio.Lock()
        self._writer: BlobWriter | None = None
        # Streams the session's bytes to peers as they arrive (see blob_mirror.py).
        self.mirror: PeerMirror | None = None

    @property
    def writer(self) -> BlobWriter:
        if self._writer is None:
            self._writer = BlobWriter(os.path.join(self.directory, "data"))
        return self._writer

    @property
    def size(self) -> int:
        if self._writer is not None:
            return self._writer.size
        try:
            return os.stat(os.path.join(self.directory, "data")).st_size
        except FileNotFoundError:
            return 0


class UploadSessions:
    def __init__(self, root: str, replica_id: str = "") -> None:
        self._replica_id = replica_id
        self._root = os.path.join(root, "uploads")
        os.makedirs(self._root, exist_ok=True)
        self._open: dict[str, Upload] = {}
        self._purge_abandoned()

    def create(self, repository: str) -> Upload:
        local = secrets.token_hex(16)
        session_id = f"{self._replica_id}.{local}" if self._replica_id else local
        directory = os.path.join(self._root, local)
        os.makedirs(directory)
        with open(os.path.join(directory, "repository"), "w") as f:
            f.write(repository)
        upload = Upload(session_id, repository, directory)
        self._open[session_id] = upload
        return upload

    def get(self, repository: str, session_id: str) -> Upload:
        upload = self._open.get(session_id)
        if upload is None:
            upload = self._load(session_id)
        if upload is None or upload.repository != repository:
            raise BlobUploadUnknown(detail={"session": session_id[:64]})
        return upload

    def _load(self, session_id: str) -> Upload | None:
        local = session_id.rsplit(".", 1)[-1]
        if not _SESSION_ID.fullmatch(local) or owner_of(session_id) != self._replica_id:
            return None
        directory = os.path.join(self._root, local)
        try:
            with open(os.path.join(directory, "repository")) as f:
                repository = f.read()
        except FileNotFoundError:
            return None
        upload = Upload(session_id, repository, directory)
        self._open[session_id] = upload
        return upload

    def remove(self, upload: Upload) -> None:
        """Forget a finished or cancelled session and its bytes."""
        self._open.pop(upload.id, None)
        if upload.mirror is not None:
            upload.mirror.abort()
        if upload._writer is not None:
            upload._writer.close()
        shutil.rmtree(upload.directory, ignore_errors=True)

    def _purge_abandoned(self) -> None:
        cutoff = time.time() - ABANDONED_AFTER_S
        for name in os.listdir(self._root):
            path = os.path.join(self._root, name)
            if os.stat(path).st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
