"""Writing one blob to S3: hashed as it comes, spooled to local files part by part,
uploaded as a multipart upload (or one PutObject when small). See s3store.py."""

from __future__ import annotations

import errno
import os
import secrets
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, BinaryIO

import botocore.exceptions

from replica.blobs.s3client import ObjectStoreUnavailable
from replica.blobs.store import storage_error
from replica.errors import DigestInvalid, Unavailable
from replica.names import new_hasher

if TYPE_CHECKING:
    from replica.blobs.s3store import S3BlobStore

PART = 8 << 20  # S3's parts are 5 MiB at least but the last


class S3BlobWriter:
    """Hashes what is written and uploads it in parts spooled through local files.
    Not thread-safe (one writer thread at a time, as for the local writer)."""

    def __init__(
        self, store: S3BlobStore, spool_dir: str, key: str, algorithm: str = "sha256"
    ) -> None:
        self._store = store
        self._spool_dir = spool_dir
        self.key = key
        self.algorithm = algorithm
        self._hasher = new_hasher(algorithm + ":")
        self.size = 0
        self.failed: Exception | None = None
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._spool: BinaryIO | None = None
        self._spool_path = ""
        self._spooled = 0

    def write(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)
        self.size += len(data)
        if self.failed is not None:
            return
        try:
            if self._spool is None:
                self._spool_path = os.path.join(self._spool_dir, secrets.token_hex(8))
                self._spool = open(self._spool_path, "w+b")
            self._spool.write(data)
            self._spooled += len(data)
            if self._spooled >= PART:
                self._send_part()
        except Exception as e:
            self.failed = e
            raise as_registry_error(e, "uploading a part") from e

    def _send_part(self) -> None:
        assert self._spool is not None
        if self._upload_id is None:
            self._upload_id = self._store.start_multipart(self.key)
        if len(self._parts) >= 2:  # two in flight per writer: wait for the older
            self._parts[-2].result()
        number = len(self._parts) + 1
        spool, path = self._spool, self._spool_path
        self._spool, self._spool_path, self._spooled = None, "", 0
        self._parts.append(self._store.upload_part(self.key, self._upload_id, number, spool, path))

    def checkpoint(self) -> None:
        pass  # a one-request blob (sessions: s3sessions.py)

    def hash_only(self) -> None:
        """Write nothing more, only hash: for a stream verified but not kept."""
        self.failed = OSError(errno.ECANCELED, "no copy is kept")

    def digest(self, algorithm: str) -> str:
        if algorithm != self.algorithm:
            # Parts of an unfinished upload cannot be read back (commit can, once done).
            raise DigestInvalid(f"this upload was hashed with {self.algorithm}")
        return f"{algorithm}:{self._hasher.hexdigest()}"

    def finish(self) -> None:
        """Upload what is left and complete the multipart upload (or PutObject it)."""
        if self.failed is not None:
            raise as_registry_error(self.failed, "uploading a part")
        if self._upload_id is None:
            body: BinaryIO | bytes = b""
            if self._spool is not None:
                self._spool.seek(0)
                body = self._spool
            try:
                self._store.put(self.key, body, self.size)
            finally:
                self._close_spool()
            return
        if self._spool is not None:
            self._send_part()
        parts = [part.result() for part in self._parts]
        self._store.complete_multipart(self.key, self._upload_id, parts)
        self._upload_id = None

    def discard(self) -> None:
        for part in self._parts:
            part.cancel()
        for part in self._parts:
            if not part.cancelled():
                try:
                    part.result()
                except Exception:
                    pass
        self._parts = []
        if self._upload_id is not None:
            self._store.abort_multipart(self.key, self._upload_id)
            self._upload_id = None
        self._close_spool()

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._spool_path:
            unlink_quietly(self._spool_path)
            self._spool_path = ""


def as_registry_error(e: Exception, what: str) -> Exception:
    if isinstance(e, Unavailable):
        return e
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return storage_error(e)
    if isinstance(e, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)):
        return ObjectStoreUnavailable(what, e)
    return e


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
