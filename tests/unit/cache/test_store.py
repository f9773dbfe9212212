"""The cache's bounded store: the blob store's verified commits, within a byte budget,
evicting the least recently used first."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from cache.store import BoundedStore
from replica.errors import DigestInvalid


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _put(store: BoundedStore, data: bytes, digest: str | None = None) -> str:
    digest = digest or _digest(data)
    assert store.reserve(len(data))
    writer = store.writer()
    writer.write(data)
    try:
        asyncio.run(store.commit(writer, digest, len(data)))
    finally:
        store.release(len(data))
    return digest


def test_the_least_recently_used_blob_goes_first(tmp_path) -> None:
    store = BoundedStore(str(tmp_path), max_bytes=3000)
    a, b, c = (_put(store, bytes([n]) * 1000) for n in (1, 2, 3))
    assert store.path(a) is not None  # a is used again: b is now the oldest
    d = _put(store, b"\x04" * 1000)
    assert store.path(b) is None and store.evictions == 1
    assert all(store.path(x) is not None for x in (a, c, d))
    assert store.used == 3000


def test_a_blob_larger_than_the_budget_is_refused(tmp_path) -> None:
    store = BoundedStore(str(tmp_path), max_bytes=100)
    assert not store.reserve(101)
    assert store.reserve(100)


def test_a_wrong_digest_keeps_nothing(tmp_path) -> None:
    store = BoundedStore(str(tmp_path), max_bytes=10_000)
    with pytest.raises(DigestInvalid):
        _put(store, b"payload", _digest(b"something else"))
    assert len(store) == 0 and store.used == 0


def test_a_restart_finds_what_it_held_within_the_budget(tmp_path) -> None:
    store = BoundedStore(str(tmp_path), max_bytes=5000)
    held = [_put(store, bytes([n]) * 1000) for n in range(4)]
    again = BoundedStore(str(tmp_path), max_bytes=2000)  # a smaller budget at restart
    assert len(again) == 2 and again.used == 2000
    assert sum(again.path(d) is not None for d in held) == 2
