"""Content-addressed blob storage: one interface, and its local-disk implementation.

On-disk layout of `LocalBlobStore` under its root:

    blobs/sha256/ab/abcdef…      the verified bytes of blob sha256:abcdef…
    blobs/sha512/12/1234…        likewise for sha512
    tmp/<random>                 a blob being written; never visible under blobs/

A blob reaches `blobs/` only by `commit`: the writer's file is fsynced, its
digest compared with the one asked for, and it is renamed into place and its
directory fsynced. A crash at any point leaves either no blob or a whole one.

Garbage collection deletes a file only if it is older than the moment this replica
applied the collection (consensus/gc.py): `commit` and `claim` set a file's time
to now, and they and `delete_if_older` hold one lock, so a copy committed again
while the collector deletes the old one is either put back after or kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

from replica.errors import DigestInvalid, SizeInvalid, StorageFull
from replica.names import new_hasher

_SYNC_EVERY = 16 << 20


class BlobWriter(Protocol):
    """Hashes what is written to it and keeps it until the store commits or discards it.
    One writer thread at a time."""

    size: int
    failed: Exception | None  # set once it stopped keeping bytes (it still hashes)

    def write(self, data: bytes | memoryview) -> None: ...
    def checkpoint(self) -> None:
        """Make what was written resumable elsewhere (an upload session between
        requests; a no-op where the bytes stay on this replica's disk)."""
        ...

    def hash_only(self) -> None: ...
    def digest(self, algorithm: str) -> str: ...
    def discard(self) -> None: ...


class FileBlobWriter:
    """An append-only file that hashes what is written to it. Not thread-safe."""

    def __init__(self, path: str, algorithm: str = "sha256") -> None:
        self.path = path
        self._algorithm = algorithm
        self._hasher = new_hasher(algorithm + ":")
        self.size = 0
        self._unsynced = 0
        self._dropped = 0  # pages before this offset were flushed and given back
        self.failed: Exception | None = None
        exists = os.path.exists(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if exists:
            self._rehash()

    def _rehash(self) -> None:
        # hashlib state cannot be saved, so a resumed upload re-reads its bytes.
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                self._hasher.update(chunk)
                self.size += len(chunk)

    def write(self, data: bytes | memoryview) -> None:
        """Hash and append. After a failed write (a full disk) the writer only hashes:
        `digest` still checks what passed through, and `commit` refuses the file."""
        self._hasher.update(data)
        self.size += len(data)
        if self.failed is not None:
            return
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._unsynced += len(data)
            if self._unsynced >= _SYNC_EVERY:
                # Flush as we go, while the network keeps the event loop busy, so the
                # fsync that makes the blob durable at commit has little left to do.
                os.fdatasync(self._fd)
                # Then give the flushed pages back: the next bytes reuse them. Writing
                # into pages the kernel has to find fresh cost 3-6 CPU-seconds per GiB
                # on our 2-core VMs (free memory handed back to the host comes back
                # slowly), against 0.2 for recycled ones; a blob read later comes from
                # the disk instead of the cache.
                os.posix_fadvise(
                    self._fd, self._dropped, self.size - self._dropped, os.POSIX_FADV_DONTNEED
                )
                self._dropped = self.size
                self._unsynced = 0
        except OSError as e:
            self.failed = e
            raise storage_error(e) from e

    def checkpoint(self) -> None:
        pass  # a session's file is found again by the replica that holds it

    def hash_only(self) -> None:
        """Write nothing more, only hash: for a stream verified but not kept."""
        self.failed = OSError(errno.ECANCELED, "no copy is kept")

    def digest(self, algorithm: str) -> str:
        if algorithm == self._algorithm:
            return f"{algorithm}:{self._hasher.hexdigest()}"
        # Rare: the client asked for another algorithm than the upload started with.
        hasher = new_hasher(algorithm + ":")
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
        return f"{algorithm}:{hasher.hexdigest()}"

    def sync(self) -> None:
        if self.failed is not None:
            raise storage_error(self.failed)
        try:
            os.fsync(self._fd)
        except OSError as e:
            raise storage_error(e) from e

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class BlobStore(Protocol):
    """What the registry needs of blob storage, addressed by digest."""

    root: str  # the store's local directory (spooled or set-aside files)
    # Whether every replica sees the same blobs (object storage): then replicas do not
    # copy blobs to each other, and one replica sweeps and scrubs for all.
    shared: bool

    def stat(self, digest: str) -> int | None: ...
    def open(self, digest: str) -> BinaryIO: ...
    def read(self, digest: str, start: int, length: int) -> Iterator[bytes]:
        """`length` bytes from `start` in chunks (blocking: call it off the event loop)."""
        ...

    def redirect(self, digest: str) -> str | None:
        """A short-lived URL the client can fetch the blob from itself, if the store
        serves them (object storage with `blobs.redirect`); else None."""
        ...

    def writer(self, digest: str | None = None) -> BlobWriter:
        """A writer for one blob; `digest`, if known, is what it should hash to."""
        ...

    def session_writer(self, directory: str) -> BlobWriter:
        """The writer of an upload session whose own files live in `directory`."""
        ...

    def commit(self, writer: BlobWriter, digest: str, size: int | None = None) -> int: ...
    def claim(self, digest: str) -> int | None:
        """Keep an existing blob as if committed now (its size), or None if absent."""
        ...

    def delete_if_older(
        self, digest: str, before: float, still_garbage: Callable[[], bool]
    ) -> int | None:
        """Delete the blob if committed or claimed before `before` (time.time()) and
        `still_garbage()` holds; the bytes freed, or None if it was kept or absent."""
        ...

    def delete(self, digest: str) -> bool: ...
    def walk(self) -> Iterator[str]: ...


class LocalBlobStore:
    shared = False

    def __init__(self, root: str, owner: bool = True) -> None:
        """`owner`: this process owns the directory, so unfinished writes in it are
        leftovers of a crash (not so for a tool writing into a running replica's)."""
        self.root = root
        self._blobs = os.path.join(root, "blobs")
        self._tmp = os.path.join(root, "tmp")
        os.makedirs(self._blobs, exist_ok=True)
        os.makedirs(self._tmp, exist_ok=True)
        self._placing = threading.Lock()  # see the module's docstring
        # Leftovers of writes that a crash interrupted are never blobs.
        for name in os.listdir(self._tmp) if owner else []:
            os.unlink(os.path.join(self._tmp, name))

    def path(self, digest: str) -> str:
        """Where the committed blob lives on local disk (served with pread)."""
        # The digest was validated by the grammar (algorithm:hex), so this stays under root.
        algorithm, hexpart = digest.split(":", 1)
        return os.path.join(self._blobs, algorithm, hexpart[:2], hexpart)

    def stat(self, digest: str) -> int | None:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            return None

    def open(self, digest: str) -> BinaryIO:
        return open(self.path(digest), "rb")

    def read(self, digest: str, start: int, length: int) -> Iterator[bytes]:
        with open(self.path(digest), "rb") as f:
            f.seek(start)
            while length > 0 and (chunk := f.read(min(1 << 20, length))):
                length -= len(chunk)
                yield chunk

    def redirect(self, digest: str) -> str | None:
        return None

    def writer(self, digest: str | None = None) -> FileBlobWriter:
        return FileBlobWriter(os.path.join(self._tmp, secrets.token_hex(16)))

    def session_writer(self, directory: str) -> FileBlobWriter:
        return local_session_writer(directory)

    def commit(self, writer: BlobWriter, digest: str, size: int | None = None) -> int:
        """Make the writer's bytes the blob `digest`, or raise and discard them."""
        assert isinstance(writer, FileBlobWriter)
        algorithm = digest.split(":", 1)[0]
        try:
            if size is not None and size != writer.size:
                raise SizeInvalid(detail={"expected": size, "received": writer.size})
            actual = writer.digest(algorithm)
            if actual != digest:
                raise DigestInvalid(detail={"expected": digest, "actual": actual})
            writer.sync()
        except Exception:
            writer.discard()
            raise
        writer.close()
        final = self.path(digest)
        if self.claim(digest) is not None:
            os.unlink(writer.path)
            return writer.size
        directory = os.path.dirname(final)
        try:
            os.makedirs(directory, exist_ok=True)
            with self._placing:
                os.rename(writer.path, final)
                _touch(final)
        except OSError as e:  # a full disk can refuse a new directory
            writer.discard()
            raise storage_error(e) from e
        _fsync_dir(directory)
        return writer.size

    def claim(self, digest: str) -> int | None:
        with self._placing:
            try:
                _touch(self.path(digest))
                return os.stat(self.path(digest)).st_size
            except FileNotFoundError:
                return None

    def delete_if_older(
        self, digest: str, before: float, still_garbage: Callable[[], bool]
    ) -> int | None:
        path = self.path(digest)
        with self._placing:
            try:
                found = os.stat(path)
            except FileNotFoundError:
                return None
            if found.st_mtime >= before or not still_garbage():
                return None
            os.unlink(path)
        return found.st_size

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self.path(digest))
            return True
        except FileNotFoundError:
            return False

    def walk(self) -> Iterator[str]:
        for algorithm in sorted(os.listdir(self._blobs)):
            base = os.path.join(self._blobs, algorithm)
            for prefix in sorted(os.listdir(base)):
                for name in sorted(os.listdir(os.path.join(base, prefix))):
                    yield f"{algorithm}:{name}"


@contextlib.contextmanager
def local_file(store: BlobStore, digest: str) -> Iterator[str]:
    """A local file holding the blob, for readers that seek (zip archives): the store's
    own file, or a copy downloaded into its directory for the time of the block."""
    if isinstance(store, LocalBlobStore):
        yield store.path(digest)
        return
    fd, path = tempfile.mkstemp(dir=store.root, prefix="read-")
    try:
        with os.fdopen(fd, "wb") as f, store.open(digest) as source:
            shutil.copyfileobj(source, f, 1 << 20)
        yield path
    finally:
        os.unlink(path)


def copy_in(store: BlobStore, path: str, digest: str) -> int:
    """Store a local file as the blob `digest` (verified as any write); its size."""
    writer = store.writer(digest)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                writer.write(chunk)
    except BaseException:
        writer.discard()
        raise
    return store.commit(writer, digest)


def local_session_writer(directory: str) -> FileBlobWriter:
    """An upload session's bytes in its directory, resumed after a restart (the file is
    hashed again when first touched)."""
    return FileBlobWriter(os.path.join(directory, "data"))


def storage_error(e: Exception) -> Exception:
    """A full disk as the registry's error (507); any other error as it is."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(detail={"error": str(e)})
    return e


def _touch(path: str) -> None:
    # An explicit time is kept to the nanosecond; the kernel's own "now" can lag it
    # by a clock tick, which would make a fresh copy look older than a collection.
    now = time.time()
    os.utime(path, (now, now))


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
