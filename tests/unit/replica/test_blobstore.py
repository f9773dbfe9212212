"""The blob store contract: one suite, run against every implementation."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest

from cli import ports
from replica.blobs.s3purge import purge_uploads
from replica.blobs.s3store import PART, S3BlobStore, S3Settings
from replica.blobs.store import BlobStore, LocalBlobStore
from replica.errors import DigestInvalid, SizeInvalid
from tests.object_store import ACCESS_KEY, SECRET_KEY, SeaweedFS, make_bucket, s3_client


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = ports.free_block(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def seaweedfs() -> Iterator[SeaweedFS]:
    with tempfile.TemporaryDirectory() as directory:
        server = SeaweedFS(directory).start()
        yield server
        server.stop()


def _bucket(endpoint: str) -> S3Settings:
    """The one bucket (SeaweedFS gives each bucket volumes of its own: a few fill the
    server), under a prefix of the test's own."""
    settings = S3Settings(
        endpoint=endpoint,
        bucket="qreg-blobs",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        prefix=f"contract-{secrets.token_hex(4)}",
    )
    make_bucket(settings)
    return settings


@pytest.fixture(params=["local", "moto", pytest.param("seaweedfs", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[BlobStore]:
    """Every implementation of the contract: a local directory, and a bucket of its own
    on moto (an imitation, quick) and on SeaweedFS (a real object store, slow)."""
    if request.param == "local":
        yield LocalBlobStore(str(tmp_path))
        return
    endpoint = (
        request.getfixturevalue("moto_endpoint")
        if request.param == "moto"
        else request.getfixturevalue("seaweedfs").endpoint
    )
    s3 = S3BlobStore(_bucket(endpoint), str(tmp_path), parts_in_flight=4, redirect_s=60)
    yield s3
    s3.close()


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


def test_range_reads(store: BlobStore) -> None:
    data = os.urandom(3 << 20)
    writer = store.writer()
    writer.write(data)
    store.commit(writer, digest(data))
    assert b"".join(store.read(digest(data), 0, len(data))) == data
    assert b"".join(store.read(digest(data), 1000, 5)) == data[1000:1005]
    assert b"".join(store.read(digest(data), len(data) - 7, 7)) == data[-7:]
    assert b"".join(store.read(digest(data), 10, 0)) == b""


def test_a_blob_of_many_parts_written_in_odd_chunks(store: BlobStore) -> None:
    """More than two parts (so a writer waits for its older part), written in pieces
    that do not line up with the parts; a writer that knows its digest and one that
    learns it at commit both end with the same blob."""
    data = os.urandom(2 * PART + 12345)
    for expected in (digest(data), None):
        writer = store.writer(expected)
        for at in range(0, len(data), 3_000_001):
            writer.write(data[at : at + 3_000_001])
        assert store.commit(writer, digest(data)) == len(data)
        assert b"".join(store.read(digest(data), PART - 3, 6)) == data[PART - 3 : PART + 3]
    with store.open(digest(data)) as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest(data).split(":")[1]
    assert list(store.walk()) == [digest(data)]


def test_a_discarded_write_leaves_nothing(store: BlobStore, tmp_path) -> None:
    data = os.urandom(PART + 10)
    writer = store.writer()
    writer.write(data)
    writer.discard()
    assert store.stat(digest(data)) is None and list(store.walk()) == []
    if isinstance(store, S3BlobStore):  # no spooled part or upload is left behind
        assert os.listdir(tmp_path / "spool") == []
        listed = s3_client(store.settings).list_multipart_uploads(
            Bucket=store.settings.bucket, Prefix=store.settings.prefix
        )
        assert listed.get("Uploads", []) == []


def test_a_wrong_digest_after_many_parts_leaves_nothing(store: BlobStore) -> None:
    data = os.urandom(PART + 10)
    writer = store.writer()
    writer.write(data)
    with pytest.raises(DigestInvalid):
        store.commit(writer, digest(b"something else"))
    assert list(store.walk()) == []
    if isinstance(store, S3BlobStore):
        client = s3_client(store.settings)
        found = client.list_objects_v2(
            Bucket=store.settings.bucket, Prefix=store.settings.prefix
        ).get("Contents", [])
        assert found == []


def test_redirects_are_presigned_and_expire_with_the_setting(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"pulled from the bucket")
    store.commit(writer, digest(b"pulled from the bucket"))
    url = store.redirect(digest(b"pulled from the bucket"))
    if isinstance(store, LocalBlobStore):
        assert url is None
        return
    assert url is not None and "X-Amz-Expires=60" in url
    answer = httpx.get(url, headers={"Range": "bytes=7-10"})
    assert answer.status_code == 206 and answer.content == b"from"


def test_the_wrong_secret_and_a_changed_redirect_are_refused(
    seaweedfs: SeaweedFS, tmp_path
) -> None:
    """Only a real object store checks signatures (moto accepts anything)."""
    from replica.blobs.s3store import ObjectStoreUnavailable

    settings = seaweedfs.settings()
    store = S3BlobStore(settings, str(tmp_path), redirect_s=60)
    writer = store.writer()
    writer.write(b"signed")
    store.commit(writer, digest(b"signed"))
    url = store.redirect(digest(b"signed"))
    assert url is not None and httpx.get(url).content == b"signed"
    other = store.key(digest(b"other")).rsplit("/", 1)[1]
    assert httpx.get(url.replace(digest(b"signed").split(":")[1], other)).status_code == 403
    store.delete(digest(b"signed"))
    store.close()
    wrong = S3BlobStore(S3Settings(**{**settings.__dict__, "secret_key": "wrong"}), str(tmp_path))
    with pytest.raises(ObjectStoreUnavailable, match="SignatureDoesNotMatch|AccessDenied|403"):
        wrong.check()
    wrong.close()


test_the_wrong_secret_and_a_changed_redirect_are_refused = pytest.mark.slow(
    test_the_wrong_secret_and_a_changed_redirect_are_refused
)


def test_discarded_writers_give_their_part_slots_back(moto_endpoint: str, tmp_path) -> None:
    """Parts cancelled before they were sent release their slot: with one slot, a
    writer after many discarded ones still gets its parts out."""
    import threading

    store = S3BlobStore(_bucket(moto_endpoint), str(tmp_path), parts_in_flight=1)
    data = os.urandom(PART + 10)

    def churn() -> None:
        for _ in range(4):
            writer = store.writer()
            writer.write(data)
            writer.write(data)  # a second part waits for the one slot
            writer.discard()
        writer = store.writer()
        writer.write(data + data)
        store.commit(writer, digest(data + data))

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "a writer waited for a part slot that never came back"
    assert store.stat(digest(data + data)) == 2 * len(data)
    assert os.listdir(tmp_path / "spool") == []
    store.close()


@pytest.mark.parametrize("server", ["moto", pytest.param("seaweedfs", marks=pytest.mark.slow)])
def test_a_session_goes_on_on_another_replica(
    server: str, request: pytest.FixtureRequest, tmp_path
) -> None:
    """Two replicas share a bucket: a session begun on one (two whole parts and a tail,
    checkpointed) is carried on by the other from the bucket alone, and committed."""
    endpoint = (
        request.getfixturevalue("moto_endpoint")
        if server == "moto"
        else request.getfixturevalue("seaweedfs").endpoint
    )
    settings = _bucket(endpoint)
    first = S3BlobStore(settings, str(tmp_path / "r0"))
    second = S3BlobStore(settings, str(tmp_path / "r1"))
    session = secrets.token_hex(16)
    here, there = tmp_path / "r0" / "uploads" / session, tmp_path / "r1" / "uploads" / session
    for directory in (here, there):
        directory.mkdir(parents=True)
    (here / "repository").write_text("team/app")
    (here / "user").write_text("ahab")
    data = os.urandom(2 * PART + 3_000_000)
    writer = first.session_writer(str(here))
    writer.write(data[: 2 * PART + 1000])
    writer.checkpoint()
    assert second.session_info(session) == ("team/app", "ahab")
    taken = second.session_writer(str(there))
    assert taken.size == 2 * PART + 1000
    taken.write(data[2 * PART + 1000 :])
    taken.checkpoint()
    assert second.commit(taken, digest(data)) == len(data)
    assert b"".join(second.read(digest(data), 0, len(data))) == data
    assert second.session_info(session) is None  # the session's own objects are gone
    listed = s3_client(settings).list_objects_v2(Bucket=settings.bucket, Prefix=settings.prefix)
    assert [o["Key"] for o in listed["Contents"]] == [second.key(digest(data))]
    first.close()
    second.close()


@pytest.mark.slow
def test_the_leader_purges_what_abandoned_uploads_left(seaweedfs: SeaweedFS, tmp_path) -> None:
    """Session objects and multipart uploads older than the cut-off go; blobs stay.
    (Not on moto: it dates every multipart upload 2010.)"""
    store = S3BlobStore(_bucket(seaweedfs.endpoint), str(tmp_path))
    session = tmp_path / "uploads" / secrets.token_hex(16)
    session.mkdir(parents=True)
    abandoned = store.session_writer(str(session))
    abandoned.write(os.urandom(PART))
    abandoned.write(b"tail!")
    abandoned.checkpoint()
    killed = store.writer(digest(b"never finished"))
    killed.write(os.urandom(PART + 5))  # a multipart upload begun, never completed
    kept = store.writer()
    kept.write(b"a blob")
    store.commit(kept, digest(b"a blob"))
    assert purge_uploads(store, time.time() - 3600) == 0  # nothing that old yet
    assert purge_uploads(store, time.time() + 5) == 4  # part, tail, state, multipart upload
    client = s3_client(store.settings)
    left = client.list_objects_v2(Bucket=store.settings.bucket, Prefix=store.settings.prefix)
    assert [o["Key"] for o in left["Contents"]] == [store.key(digest(b"a blob"))]
    assert (
        client.list_multipart_uploads(
            Bucket=store.settings.bucket, Prefix=store.settings.prefix
        ).get("Uploads", [])
        == []
    )
    killed.discard()
    abandoned.discard()
    store.close()
