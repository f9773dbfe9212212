"""Blob upload sessions in progress, kept on disk apart from blobs.

Layout under the data directory:

    uploads/<session-id>/repository   the repository the session was opened for
    uploads/<session-id>/user         who opened it (for the per-user cap)
    uploads/<session-id>/data         the bytes received so far

Each user may hold `max_per_user` sessions at once (429 beyond: each holds a
directory, a file and hashing state), and a session untouched for
`expire_after_s` is removed (distribution purges uploads after a week too).

A session survives a restart of the process: its writer re-hashes `data` when it
is first touched again. A session id is `<owner replica id>.<32 hex>`: any
replica can tell which one holds the bytes. Only the hex part names a
directory, and it is checked before it touches a path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable

from replica.blobs.mirror import PeerMirror
from replica.blobs.store import BlobWriter, FileBlobWriter, local_session_writer
from replica.errors import BlobUploadUnknown, TooManyRequests

log = logging.getLogger("qreg.uploads")

_SESSION_ID = re.compile(r"[a-f0-9]{32}")


def owner_of(session_id: str) -> str:
    """The replica that opened a session (and holds its bytes)."""
    return session_id.rsplit(".", 1)[0] if "." in session_id else ""


# Sessions untouched this long are abandoned: clients restart uploads anyway.
ABANDONED_AFTER_S = 7 * 24 * 3600
MAX_PER_USER = 64


class Upload:
    def __init__(
        self,
        session_id: str,
        repository: str,
        directory: str,
        user: str = "",
        new_writer: Callable[[str], BlobWriter] = local_session_writer,
    ) -> None:
        self._new_writer = new_writer
        self.id = session_id
        self.repository = repository
        self.directory = directory
        self.user = user
        self.touched = time.time()
        self.lock = asyncio.Lock()
        self._writer: BlobWriter | None = None
        # Streams the session's bytes to peers as they arrive (see mirror.py).
        self.mirror: PeerMirror | None = None

    async def open(self) -> None:
        """Make the writer off the event loop: a session carried on after a restart
        or from another replica hashes its bytes so far again first."""
        if self._writer is None:
            self._writer = await asyncio.to_thread(self._new_writer, self.directory)

    @property
    def writer(self) -> BlobWriter:
        if self._writer is None:
            self._writer = self._new_writer(self.directory)
        return self._writer

    @property
    def size(self) -> int:
        return self.writer.size


class UploadSessions:
    def __init__(
        self,
        root: str,
        replica_id: str = "",
        max_per_user: int = MAX_PER_USER,
        expire_after_s: float = ABANDONED_AFTER_S,
        new_writer: Callable[[str], BlobWriter] = local_session_writer,
        shared_info: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> None:
        self._new_writer = new_writer  # the blob store's session_writer
        # With a shared store: (repository, user) of a session any replica began.
        self._shared_info = shared_info
        self._replica_id = replica_id
        self._root = os.path.join(root, "uploads")
        self._max_per_user = max_per_user
        self.expire_after_s = expire_after_s
        os.makedirs(self._root, exist_ok=True)
        self._open: dict[str, Upload] = {}
        self._dropping: set[asyncio.Future[None]] = set()  # ended sessions' objects going
        self._per_user: dict[str, int] = {}
        self.purge_abandoned()
        for name in os.listdir(self._root):  # sessions from before a restart count too
            if _SESSION_ID.fullmatch(name):
                user = _read(os.path.join(self._root, name, "user"))
                self._per_user[user] = self._per_user.get(user, 0) + 1

    def create(self, repository: str, user: str = "") -> Upload:
        if self._per_user.get(user, 0) >= self._max_per_user:
            raise TooManyRequests(
                f"{self._max_per_user} uploads in progress already: finish or cancel some first",
                headers={"Retry-After": "60"},
            )
        local = secrets.token_hex(16)
        session_id = f"{self._replica_id}.{local}" if self._replica_id else local
        directory = os.path.join(self._root, local)
        os.makedirs(directory)
        with open(os.path.join(directory, "repository"), "w") as f:
            f.write(repository)
        with open(os.path.join(directory, "user"), "w") as f:
            f.write(user)
        upload = Upload(session_id, repository, directory, user, self._new_writer)
        self._open[session_id] = upload
        self._per_user[user] = self._per_user.get(user, 0) + 1
        return upload

    def get(self, repository: str, session_id: str) -> Upload:
        upload = self._open.get(session_id)
        if upload is None:
            upload = self._load(session_id)
        if upload is None or upload.repository != repository:
            raise BlobUploadUnknown(detail={"session": session_id[:64]})
        upload.touched = time.time()
        return upload

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._open

    def in_progress(self, user: str) -> int:
        return self._per_user.get(user, 0)

    def _load(self, session_id: str) -> Upload | None:
        local = session_id.rsplit(".", 1)[-1]
        if not _SESSION_ID.fullmatch(local):
            return None
        mine = owner_of(session_id) == self._replica_id
        directory = os.path.join(self._root, local)
        if not mine or not os.path.isdir(directory):
            return self._take_over(local) if self._shared_info is not None else None
        try:
            with open(os.path.join(directory, "repository")) as f:
                repository = f.read()
        except FileNotFoundError:
            return None
        user = _read(os.path.join(directory, "user"))
        upload = Upload(session_id, repository, directory, user, self._new_writer)
        upload.touched = _last_touch(directory)
        self._open[session_id] = upload
        return upload

    def _take_over(self, local: str) -> Upload | None:
        """A session whose bytes are in the shared store, begun by another replica
        (down, or restarted without it): carried on here, under an id naming this one."""
        assert self._shared_info is not None
        session_id = f"{self._replica_id}.{local}" if self._replica_id else local
        if session_id in self._open:
            return self._open[session_id]
        info = self._shared_info(local)
        if info is None:
            return None
        repository, user = info
        directory = os.path.join(self._root, local)
        os.makedirs(directory, exist_ok=True)
        for name, value in (("repository", repository), ("user", user)):
            with open(os.path.join(directory, name), "w") as f:
                f.write(value)
        upload = Upload(session_id, repository, directory, user, self._new_writer)
        self._open[session_id] = upload
        self._per_user[user] = self._per_user.get(user, 0) + 1
        return upload

    def remove(self, upload: Upload) -> None:
        """Forget a finished or cancelled session and its bytes."""
        if self._open.pop(upload.id, None) is not None or os.path.isdir(upload.directory):
            left = self._per_user.get(upload.user, 0) - 1
            if left > 0:
                self._per_user[upload.user] = left
            else:
                self._per_user.pop(upload.user, None)
        if upload.mirror is not None:
            upload.mirror.abort()
        writer, upload._writer = upload._writer, None
        if writer is None or isinstance(writer, FileBlobWriter):
            if writer is not None:
                writer.discard()
            shutil.rmtree(upload.directory, ignore_errors=True)
            return
        # A session in object storage: deleting its objects takes requests, which must
        # not hold up the event loop.
        _in_background(writer, upload.directory, self._dropping)

    def purge_abandoned(self) -> int:
        """Remove sessions untouched for expire_after_s; how many went."""
        cutoff = time.time() - self.expire_after_s
        gone = 0
        for upload in [
            u for u in self._open.values() if u.touched < cutoff and not u.lock.locked()
        ]:
            self.remove(upload)
            gone += 1
        for name in os.listdir(self._root):
            path = os.path.join(self._root, name)
            session = f"{self._replica_id}.{name}" if self._replica_id else name
            if session not in self._open and _last_touch(path) < cutoff:
                user = _read(os.path.join(path, "user"))
                shutil.rmtree(path, ignore_errors=True)
                if user in self._per_user:
                    self._per_user[user] -= 1
                    if self._per_user[user] <= 0:
                        del self._per_user[user]
                gone += 1
        return gone

    async def expire_forever(self, every_s: float = 600.0) -> None:
        while True:
            await asyncio.sleep(min(every_s, self.expire_after_s))
            self.purge_abandoned()


def _in_background(writer: BlobWriter, directory: str, pending: set[asyncio.Future[None]]) -> None:
    def drop() -> None:
        try:
            writer.discard()
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop (tools, tests): now
        drop()
        return
    future = loop.run_in_executor(None, drop)
    pending.add(future)  # held until done: the loop keeps only weak references

    def done(f: asyncio.Future[None]) -> None:
        pending.discard(f)
        if not f.cancelled() and f.exception() is not None:
            log.warning("removing an ended upload's objects failed: %s", f.exception())

    future.add_done_callback(done)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _last_touch(directory: str) -> float:
    """When a session directory or its bytes last changed (0 when gone)."""
    times = []
    for path in (directory, os.path.join(directory, "data")):
        try:
            times.append(os.stat(path).st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)
