"""A digest of the whole metadata state, kept current at every applied index.

Two replicas at the same applied index must hold byte-identical state; this makes
that checkable in O(1). The digest is the sum, modulo 2**256, of
sha256(key || 0x00 || value) over every key of the database except the digest's
own and the applied index (an additive multiset hash, as in Bellare and
Micciancio's AdHash): order does not matter, and a write changes it by
subtracting the old pair's hash and adding the new one's, so each put or delete
costs one extra read and two hashes, inside the same LMDB transaction as the
write. It detects accidents (a bad snapshot install, a bug, disk rot), not an
adversary who can write the database.

`range_digests` splits the state by its first two key bytes (the kind of record
and the first byte of its name) so `qreg verify` can name where replicas differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import lmdb

DIGEST_KEY = b"m\0state_digest"
# Bookkeeping, not state: an upgraded replica may record what an older one does not.
COMMAND_VERSION_KEY = b"m\0command_version"
_EXCLUDED = (DIGEST_KEY, b"m\0applied", COMMAND_VERSION_KEY)
_MOD = 1 << 256


def entry_hash(key: bytes, value: bytes) -> int:
    return int.from_bytes(hashlib.sha256(key + b"\0" + value).digest(), "big")


def stored(txn: lmdb.Transaction) -> int | None:
    raw = txn.get(DIGEST_KEY)
    return int.from_bytes(raw, "big") if raw else None


def store(txn: lmdb.Transaction, digest: int) -> None:
    txn.put(DIGEST_KEY, digest.to_bytes(32, "big"))


def full(txn: lmdb.Transaction) -> int:
    """The digest recomputed from every key (a full scan)."""
    total = 0
    for key, value in _entries(txn):
        total = (total + entry_hash(key, value)) % _MOD
    return total


def range_digests(txn: lmdb.Transaction) -> dict[str, tuple[int, str]]:
    """{printable two-byte key prefix: (keys, digest hex)} over the whole state."""
    ranges: dict[bytes, list[int]] = {}
    for key, value in _entries(txn):
        bucket = ranges.setdefault(key[:3], [0, 0])  # kind, separator, first name byte
        bucket[0] += 1
        bucket[1] = (bucket[1] + entry_hash(key, value)) % _MOD
    return {
        prefix.replace(b"\0", b"/").decode("utf-8", "replace"): (n, f"{d:064x}")
        for prefix, (n, d) in sorted(ranges.items())
    }


def _entries(txn: lmdb.Transaction) -> Iterator[tuple[bytes, bytes]]:
    for key, value in txn.cursor().iternext(keys=True, values=True):
        if key not in _EXCLUDED:
            yield bytes(key), bytes(value)


def hex_of(digest: int) -> str:
    return f"{digest:064x}"


class DigestingTxn:
    """A write transaction that keeps the running digest up to date as it writes.

    Only what the state machine uses is exposed (get, put, delete, cursor); cursors
    are for reading, every write goes through put and delete.
    """

    def __init__(self, txn: lmdb.Transaction, digest: int) -> None:
        self._txn = txn
        self.digest = digest

    def get(self, key: bytes, default: Any = None) -> Any:
        return self._txn.get(key, default)

    def cursor(self) -> lmdb.Cursor:
        return self._txn.cursor()

    def put(self, key: bytes, value: bytes, **kwargs: Any) -> bool:
        old = self._txn.get(key)
        written = bool(self._txn.put(key, value, **kwargs))
        if written and key not in _EXCLUDED:
            if old is not None:
                self.digest -= entry_hash(key, bytes(old))
            self.digest = (self.digest + entry_hash(key, value)) % _MOD
        return written

    def delete(self, key: bytes, value: bytes = b"") -> bool:
        old = self._txn.get(key)
        deleted = bool(self._txn.delete(key, value))
        if deleted and old is not None and key not in _EXCLUDED:
            self.digest = (self.digest - entry_hash(key, bytes(old))) % _MOD
        return deleted
