"""Upload sessions whose bytes live in the bucket, so any replica can carry one on.

Layout under the store's prefix, for session <hex> (the id's part after the dot):

    uploads/<hex>/part-00001 …   whole parts (8 MiB or a little more), as objects
    uploads/<hex>/tail           the bytes after the last whole part, as of the last request
    uploads/<hex>/state          {"parts": N, "tail": T, "size": S, "repository": R, "user": U}

Parts are plain objects, not parts of a multipart upload, because a replica that takes
a session over (its owner down, or restarted) must read the bytes back to hash them
again: hashlib's state cannot be saved. At the end of every PATCH the writer
`checkpoint`s: its parts are in, the tail is written and the state names them. At
commit, once the digest matched, the blob is composed under its key by the store
(UploadPartCopy of each part, then the tail) and the session's objects go.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any

from replica.blobs.s3writer import PART, S3BlobWriter, as_registry_error
from replica.errors import BlobUploadUnknown

if TYPE_CHECKING:
    from replica.blobs.s3store import S3BlobStore

log = logging.getLogger("qreg.blobs")


class S3SessionWriter(S3BlobWriter):
    """A session's writer: resumed from the bucket's state when one exists."""

    def __init__(self, store: S3BlobStore, directory: str, base: str) -> None:
        super().__init__(store, directory, base)
        self.base = base  # uploads/<hex>/
        self._directory = directory
        self.part_keys: list[str] = []
        state = store.read_json(base + "state")
        if state is not None:
            self._resume(state)

    def _resume(self, state: dict[str, Any]) -> None:
        for n in range(1, int(state["parts"]) + 1):
            key = f"{self.base}part-{n:05d}"
            for chunk in self._store.read_key(key):
                self._hasher.update(chunk)
                self.size += len(chunk)
            self.part_keys.append(key)
        if int(state.get("tail", 0)):
            for chunk in self._store.read_key(self.base + "tail"):
                super().write(chunk)  # hashed, and spooled again: the next bytes follow it
        if self.size != int(state["size"]):
            raise BlobUploadUnknown("the upload's stored bytes do not match its state")

    def _send_part(self) -> None:
        assert self._spool is not None
        if len(self._parts) >= 2:  # two in flight per writer: wait for the older
            self._parts[-2].result()
        key = f"{self.base}part-{len(self.part_keys) + 1:05d}"
        spool, path = self._spool, self._spool_path
        self._spool, self._spool_path, self._spooled = None, "", 0
        self._parts.append(self._store.send_object(key, spool, path))
        self.part_keys.append(key)

    def checkpoint(self) -> None:
        """Make what was written so far resumable by any replica."""
        if self.failed is not None:
            raise as_registry_error(self.failed, "uploading a part")
        for part in self._parts:
            part.result()
        if self._spooled:  # the state says how much of the tail object counts
            self._put_spooled(self.base + "tail")
        state = {
            "parts": len(self.part_keys),
            "tail": self._spooled,
            "size": self.size,
            "repository": _read(os.path.join(self._directory, "repository")),
            "user": _read(os.path.join(self._directory, "user")),
        }
        self._store.put(self.base + "state", json.dumps(state).encode(), -1)

    def _put_spooled(self, key: str) -> None:
        """PutObject what is spooled (less than a part), leaving the spool as it is."""
        if self._spool is None:
            self._store.put(key, b"", 0)
            return
        self._spool.flush()
        with open(self._spool_path, "rb") as f:
            self._store.put(key, f, self._spooled)

    def compose(self, key: str) -> None:
        """Put the session's bytes under `key` (the digest was checked)."""
        if self.failed is not None:
            raise as_registry_error(self.failed, "uploading a part")
        for part in self._parts:
            part.result()
        if not self.part_keys:
            self._put_spooled(key)
            return
        upload_id = self._store.start_multipart(key)
        try:
            done = self._store.copy_parts(key, upload_id, self.part_keys)
            if self._spooled:
                assert self._spool is not None
                last = self._store.upload_part(
                    key, upload_id, len(done) + 1, self._spool, self._spool_path
                )
                self._spool, self._spool_path, self._spooled = None, "", 0
                done.append(last.result())
            self._store.complete_multipart(key, upload_id, done)
        except BaseException:
            self._store.abort_multipart(key, upload_id)
            raise

    def discard(self) -> None:
        super().discard()
        self._store.delete_prefix(self.base)


def new_base(prefix: str) -> str:
    return f"{prefix}uploads/{secrets.token_hex(16)}/"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


assert PART >= 5 << 20  # every part but the last of a composed blob must be 5 MiB or more
