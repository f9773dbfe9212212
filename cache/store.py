"""The cache's disk: the replica's blob store (atomic, verified commits) with a byte
budget and least-recently-used eviction.

Layout under the cache's data directory is the blob store's (blobs/, tmp/). The
recency order lives in memory; at start it is rebuilt from the files' access times.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict

from replica.blobs.store import FileBlobWriter, LocalBlobStore


class BoundedStore:
    def __init__(self, root: str, max_bytes: int) -> None:
        self.blobs = LocalBlobStore(root)
        self.max_bytes = max_bytes
        self._lru: OrderedDict[str, int] = OrderedDict()  # digest -> size, oldest first
        self.used = 0
        self.reserved = 0  # bytes of fetches in flight
        self.evictions = 0
        found = []
        for digest in self.blobs.walk():
            path = self.blobs.path(digest)
            st = os.stat(path)
            found.append((st.st_atime, digest, st.st_size))
        for _, digest, size in sorted(found):
            self._lru[digest] = size
            self.used += size
        self._evict(0)

    def path(self, digest: str) -> str | None:
        """The file of a held blob, marked as just used; None on a miss."""
        if digest not in self._lru:
            return None
        self._lru.move_to_end(digest)
        return self.blobs.path(digest)

    def __len__(self) -> int:
        return len(self._lru)

    def reserve(self, size: int) -> bool:
        """Make room for a fetch of `size` bytes; False if it can never fit."""
        if size > self.max_bytes:
            return False
        self._evict(size)
        self.reserved += size
        return True

    def release(self, size: int) -> None:
        self.reserved -= size

    def writer(self) -> FileBlobWriter:
        return self.blobs.writer()

    async def commit(self, writer: FileBlobWriter, digest: str, size: int) -> None:
        """Verify and keep a fetched blob (raises and discards on a digest mismatch).
        Hashing and fsync run in a thread; the recency order and byte counts are only
        ever touched on the event loop, so they need no lock."""
        await asyncio.to_thread(self.blobs.commit, writer, digest, size)
        self._lru[digest] = size
        self.used += size

    def _evict(self, incoming: int) -> None:
        # A file still being read stays readable after unlink; only the name goes.
        while self._lru and self.used + self.reserved + incoming > self.max_bytes:
            digest, size = self._lru.popitem(last=False)
            self.blobs.delete(digest)
            self.used -= size
            self.evictions += 1
