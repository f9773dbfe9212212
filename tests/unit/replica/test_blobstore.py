"""The blob store contract: one suite, run against every implementation."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest

from replica.blobs.store import BlobStore, LocalBlobStore
from replica.errors import DigestInvalid, SizeInvalid

IMPLEMENTATIONS: dict[str, Callable[[str], BlobStore]] = {"local": LocalBlobStore}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request: pytest.FixtureRequest, tmp_path) -> BlobStore:
    return IMPLEMENTATIONS[request.param](str(tmp_path))


def digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def test_commit_then_read(store: BlobStore) -> None:
    data = os.urandom(100_000)
    writer = store.writer()
    writer.write(data[:50_000])
    writer.write(data[50_000:])
    assert store.stat(digest(data)) is None
    assert store.commit(writer, digest(data)) == len(data)
    assert store.stat(digest(data)) == len(data)
    with store.open(digest(data)) as f:
        assert f.read() == data
    assert list(store.walk()) == [digest(data)]


def test_sha512(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"hello")
    store.commit(writer, digest(b"hello", "sha512"))
    assert store.stat(digest(b"hello", "sha512")) == 5


def test_wrong_digest_leaves_nothing(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"actual")
    with pytest.raises(DigestInvalid):
        store.commit(writer, digest(b"claimed"))
    assert store.stat(digest(b"claimed")) is None and store.stat(digest(b"actual")) is None
    assert list(store.walk()) == []


def test_wrong_size_leaves_nothing(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"abc")
    with pytest.raises(SizeInvalid):
        store.commit(writer, digest(b"abc"), size=4)
    assert store.stat(digest(b"abc")) is None


def test_commit_twice_is_harmless(store: BlobStore) -> None:
    for _ in range(2):
        writer = store.writer()
        writer.write(b"same")
        store.commit(writer, digest(b"same"))
    assert list(store.walk()) == [digest(b"same")]


def test_delete(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"gone")
    store.commit(writer, digest(b"gone"))
    assert store.delete(digest(b"gone")) is True
    assert store.delete(digest(b"gone")) is False
    assert store.stat(digest(b"gone")) is None


def test_unfinished_writes_are_cleared_at_start(tmp_path) -> None:
    store = LocalBlobStore(str(tmp_path))
    store.writer().write(b"half")
    LocalBlobStore(str(tmp_path))
    assert os.listdir(tmp_path / "tmp") == []


def test_a_full_disk_fails_the_write_and_the_commit_but_not_the_hash(tmp_path) -> None:
    from replica.errors import StorageFull

    store = LocalBlobStore(str(tmp_path))
    writer = store.writer()
    full_fd = os.open("/dev/full", os.O_WRONLY)  # every write answers ENOSPC
    os.dup2(full_fd, writer._fd)
    os.close(full_fd)
    data = b"layer bytes" * 1000
    with pytest.raises(StorageFull) as full:
        writer.write(data[:5000])
    assert full.value.status == 507
    writer.write(data[5000:])  # after the failure it only hashes
    assert writer.digest("sha256") == digest(data)
    with pytest.raises(StorageFull):
        store.commit(writer, digest(data))
    assert store.stat(digest(data)) is None


def test_a_file_committed_or_claimed_after_a_collection_is_kept(store: BlobStore) -> None:
    import time

    writer = store.writer()
    writer.write(b"layer")
    store.commit(writer, digest(b"layer"))
    collected_at = time.time()  # a collection of the blob is applied here
    assert store.claim(digest(b"layer")) == 5  # a new upload of the same bytes keeps it
    assert store.delete_if_older(digest(b"layer"), collected_at, lambda: True) is None
    assert store.stat(digest(b"layer")) == 5
    later = time.time() + 1
    assert store.delete_if_older(digest(b"layer"), later, lambda: False) is None  # re-linked
    assert store.delete_if_older(digest(b"layer"), later, lambda: True) == 5
    assert store.stat(digest(b"layer")) is None
    assert store.claim(digest(b"layer")) is None
    assert store.delete_if_older(digest(b"layer"), later, lambda: True) is None
