"""Blob storage in an S3-compatible bucket that every replica shares.

Object layout under the bucket (and its optional prefix):

    blobs/sha256/ab/abcdef…      the verified bytes of blob sha256:abcdef…
    uploads/<random>             a session's bytes between its last PATCH and its PUT

A blob's key is written only by `commit`, after the digest of everything written
was checked, and S3 makes an object visible whole or not at all, so no half-written
blob is ever readable. A writer whose digest is known from the start (a monolithic
PUT) streams a multipart upload straight to the blob's key; one whose digest comes
last (POST, PATCH…, PUT) uploads under uploads/ and is copied in place by the
store, the way distribution's S3 driver moves an upload. A blob under one part
(8 MiB) goes up in one PutObject at commit.

Parts are spooled in a local file, never held in memory: a writer holds at most
two parts on disk and in flight, and the whole store at most `parts_in_flight`
uploads at once (further writers wait), so memory stays bounded whatever the
number of uploads.

Garbage collection compares an object's LastModified (the object store's clock)
with the collection's time, so a blob committed again refreshes its object
(committing an existing blob rewrites it; `claim` copies it onto itself).

boto3 rather than aiobotocore: the store is called from worker threads like the
local one (its calls block on disk there), boto3's clients are thread-safe, and its
transfer manager does multipart copies of objects over 5 GiB.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from replica.blobs.s3client import ObjectStoreUnavailable, S3Settings, is_missing, make_client
from replica.blobs.s3sessions import S3SessionWriter
from replica.blobs.s3writer import PART, S3BlobWriter, unlink_quietly
from replica.blobs.store import BlobWriter
from replica.errors import DigestInvalid, SizeInvalid, Unavailable
from replica.names import new_hasher

__all__ = ["PART", "ObjectStoreUnavailable", "S3BlobStore", "S3Settings"]

_READ = 1 << 20


class S3BlobStore:
    """The BlobStore contract (store.py) over one bucket shared by every replica."""

    shared = True

    def __init__(
        self,
        settings: S3Settings,
        spool_root: str,
        parts_in_flight: int = 16,
        redirect_s: int = 0,
    ) -> None:
        self.settings = settings
        self.redirect_s = redirect_s
        self.clock_offset = 0.0  # the store's clock less ours (seconds), from check()
        self.root = spool_root  # local: spooled parts; corrupt blobs are not moved
        self._spool = os.path.join(spool_root, "spool")
        os.makedirs(self._spool, exist_ok=True)
        for name in os.listdir(self._spool):  # parts a crash left behind
            unlink_quietly(os.path.join(self._spool, name))
        self.client = make_client(settings, pool=parts_in_flight + 16)
        self.bucket = settings.bucket
        self.prefix = settings.prefix.strip("/") + "/" if settings.prefix.strip("/") else ""
        self._parts = ThreadPoolExecutor(parts_in_flight, thread_name_prefix="s3-part")
        self._slots = threading.BoundedSemaphore(parts_in_flight)
        self._copy = TransferConfig(multipart_threshold=1 << 30, multipart_chunksize=512 << 20)

    # ---- keys -----------------------------------------------------------------------

    def key(self, digest: str) -> str:
        # The digest was validated by the grammar (algorithm:hex): no key escapes blobs/.
        algorithm, hexpart = digest.split(":", 1)
        return f"{self.prefix}blobs/{algorithm}/{hexpart[:2]}/{hexpart}"

    def _call(self, what: str, fn: Callable[..., Any], **kw: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kw)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            if is_missing(e):
                raise FileNotFoundError(kw.get("Key", "")) from e
            raise ObjectStoreUnavailable(what, e) from e

    # ---- the contract ---------------------------------------------------------------

    def check(self) -> None:
        """Raise ObjectStoreUnavailable unless the bucket answers (for /health); learn
        how far the store's clock is from ours (its LastModified times are its own)."""
        asked = time.time()
        answer = self._call("HeadBucket", self.client.head_bucket)
        date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                # Date has whole seconds: the middle of that second is the best guess.
                theirs = email.utils.parsedate_to_datetime(date).timestamp() + 0.5
                self.clock_offset = theirs - (asked + time.time()) / 2

    def stat(self, digest: str) -> int | None:
        try:
            return int(
                self._call("HeadObject", self.client.head_object, Key=self.key(digest))[
                    "ContentLength"
                ]
            )
        except FileNotFoundError:
            return None

    def open(self, digest: str) -> BinaryIO:
        try:
            body = self._call("GetObject", self.client.get_object, Key=self.key(digest))["Body"]
        except FileNotFoundError:
            raise FileNotFoundError(digest) from None
        return body  # type: ignore[no-any-return]

    def read(self, digest: str, start: int, length: int) -> Iterator[bytes]:
        """`length` bytes from `start`, in chunks of about 1 MiB (blocking)."""
        if length <= 0:
            return
        body = self._call(
            "GetObject",
            self.client.get_object,
            Key=self.key(digest),
            Range=f"bytes={start}-{start + length - 1}",
        )["Body"]
        try:
            while length > 0:
                chunk = body.read(min(_READ, length))
                if not chunk:
                    raise ObjectStoreUnavailable("GetObject", EOFError("the object ended early"))
                length -= len(chunk)
                yield chunk
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise ObjectStoreUnavailable("GetObject", e) from e
        finally:
            body.close()

    def redirect(self, digest: str) -> str | None:
        """A presigned GET of the blob, valid `redirect_s` seconds (0: no redirects)."""
        if self.redirect_s <= 0:
            return None
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.key(digest)},
                ExpiresIn=self.redirect_s,
            )
        )

    def writer(self, digest: str | None = None) -> S3BlobWriter:
        """A writer; given the digest it should have, its bytes go straight to that key."""
        key = self.key(digest) if digest else f"{self.prefix}uploads/{secrets.token_hex(16)}"
        algorithm = digest.split(":", 1)[0] if digest else "sha256"
        return S3BlobWriter(self, self._spool, key, algorithm)

    def session_writer(self, directory: str) -> S3SessionWriter:
        """An upload session's writer, carried on from the bucket if it was begun
        (here before a restart, or on another replica): see s3sessions.py."""
        return S3SessionWriter(self, directory, self._session_base(os.path.basename(directory)))

    def session_info(self, session: str) -> tuple[str, str] | None:
        """(repository, user) of a session begun on any replica, or None."""
        state = self.read_json(self._session_base(session) + "state")
        return None if state is None else (str(state["repository"]), str(state["user"]))

    def _session_base(self, session: str) -> str:
        # `session` was checked to be 32 hex digits: the key stays under uploads/.
        return f"{self.prefix}uploads/{session}/"

    def commit(self, writer: BlobWriter, digest: str, size: int | None = None) -> int:
        """Make the writer's bytes the blob `digest`, or raise and discard them."""
        assert isinstance(writer, S3BlobWriter)
        session = isinstance(writer, S3SessionWriter)
        algorithm = digest.split(":", 1)[0]
        final = self.key(digest)
        try:
            if size is not None and size != writer.size:
                raise SizeInvalid(detail={"expected": size, "received": writer.size})
            verified = algorithm == writer.algorithm
            if verified and (actual := writer.digest(algorithm)) != digest:
                raise DigestInvalid(detail={"expected": digest, "actual": actual})
            # Where the bytes land first: their key when checked already and the writer
            # can put them there, else a key of the writer's own.
            if isinstance(writer, S3SessionWriter):
                landing = final if verified else writer.key + "whole"
                writer.compose(landing)
            else:
                landing = writer.key
                writer.finish()
            if not verified:  # rare: hashed as it came with another algorithm
                actual = self._hash(landing, algorithm)
                if actual != digest:
                    self.delete_key(landing)
                    raise DigestInvalid(detail={"expected": digest, "actual": actual})
        except Exception:
            writer.discard()
            raise
        if landing != final:
            try:
                self._call(
                    "CopyObject",
                    self.client.copy,
                    CopySource={"Bucket": self.bucket, "Key": landing},
                    Key=final,
                    Config=self._copy,
                )
            finally:
                self.delete_key(landing)
        if session:
            writer.discard()  # the session's own objects
        return writer.size

    def _hash(self, key: str, algorithm: str) -> str:
        hasher = new_hasher(algorithm + ":")
        body = self._call("GetObject", self.client.get_object, Key=key)["Body"]
        with body:
            while chunk := body.read(_READ):
                hasher.update(chunk)
        return f"{algorithm}:{hasher.hexdigest()}"

    def claim(self, digest: str) -> int | None:
        """Keep an existing blob as if committed now: copied onto itself, which sets
        its LastModified (a metadata-only copy in the stores we know)."""
        key = self.key(digest)
        size = self.stat(digest)
        if size is None:
            return None
        try:
            self._call(
                "CopyObject",
                self.client.copy_object,
                CopySource={"Bucket": self.bucket, "Key": key},
                Key=key,
                MetadataDirective="REPLACE",
                Metadata={"claimed": str(int(time.time()))},
            )
        except FileNotFoundError:
            return None
        return size

    def delete_if_older(
        self, digest: str, before: float, still_garbage: Callable[[], bool]
    ) -> int | None:
        try:
            head = self._call("HeadObject", self.client.head_object, Key=self.key(digest))
        except FileNotFoundError:
            return None
        # LastModified has whole seconds, on the store's clock: a copy in the second
        # of `before` is kept.
        modified = head["LastModified"].timestamp() - self.clock_offset
        if modified + 1.0 > before or not still_garbage():
            return None
        self.delete_key(self.key(digest))
        return int(head["ContentLength"])

    def delete(self, digest: str) -> bool:
        if self.stat(digest) is None:
            return False
        self.delete_key(self.key(digest))
        return True

    def walk(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    parts = item["Key"][len(self.prefix) :].split("/")
                    if len(parts) == 4:
                        yield f"{parts[1]}:{parts[3]}"
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise ObjectStoreUnavailable("ListObjectsV2", e) from e

    # ---- what the writer asks of the bucket -----------------------------------------

    def put(self, key: str, body: BinaryIO | bytes, size: int) -> None:
        if isinstance(body, bytes):
            size = len(body)
        self._call("PutObject", self.client.put_object, Key=key, Body=body, ContentLength=size)

    def read_key(self, key: str) -> Iterator[bytes]:
        """An object's bytes in chunks; none if it does not exist."""
        try:
            body = self._call("GetObject", self.client.get_object, Key=key)["Body"]
        except FileNotFoundError:
            return
        with body:
            while chunk := body.read(_READ):
                yield chunk

    def read_json(self, key: str) -> dict[str, Any] | None:
        raw = b"".join(self.read_key(key))
        return json.loads(raw) if raw else None

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under `prefix` (a session's few objects)."""
        try:
            listed = self._call("ListObjectsV2", self.client.list_objects_v2, Prefix=prefix)
        except FileNotFoundError:
            return
        for item in listed.get("Contents", []):
            self.delete_key(item["Key"])

    def copy_parts(self, key: str, upload_id: str, sources: list[str]) -> list[dict[str, Any]]:
        """UploadPartCopy each source object as parts 1..N, eight at a time."""

        def copy(number: int, source: str) -> dict[str, Any]:
            answer = self._call(
                "UploadPartCopy",
                self.client.upload_part_copy,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": source},
            )
            return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

        with ThreadPoolExecutor(8, thread_name_prefix="s3-compose") as pool:
            return list(pool.map(copy, range(1, len(sources) + 1), sources))

    def start_multipart(self, key: str) -> str:
        return str(
            self._call("CreateMultipartUpload", self.client.create_multipart_upload, Key=key)[
                "UploadId"
            ]
        )

    def upload_part(
        self, key: str, upload_id: str, number: int, spool: BinaryIO, path: str
    ) -> Future[dict[str, Any]]:
        """Send a spooled part of a multipart upload from a pool thread."""

        def send(body: BinaryIO, size: int) -> dict[str, Any]:
            answer = self._call(
                "UploadPart",
                self.client.upload_part,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ContentLength=size,
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}

        return self._send(spool, path, send)

    def send_object(self, key: str, spool: BinaryIO, path: str) -> Future[dict[str, Any]]:
        """PutObject a spooled file from a pool thread."""

        def send(body: BinaryIO, size: int) -> dict[str, Any]:
            self.put(key, body, size)
            return {"Key": key}

        return self._send(spool, path, send)

    def _send(
        self,
        spool: BinaryIO,
        path: str,
        send: Callable[[BinaryIO, int], dict[str, Any]],
    ) -> Future[dict[str, Any]]:
        """Run `send` on a spool file in a pool thread; the file goes once it is done.
        Blocks while the store has `parts_in_flight` sends going already."""
        self._slots.acquire()

        def run() -> dict[str, Any]:
            size = spool.tell()
            spool.seek(0)
            return send(spool, size)

        def release(_: object) -> None:  # sent, failed or cancelled before it ran
            spool.close()
            unlink_quietly(path)
            self._slots.release()

        try:
            future = self._parts.submit(run)
        except BaseException:
            release(None)
            raise
        future.add_done_callback(release)
        return future

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self._call(
            "CompleteMultipartUpload",
            self.client.complete_multipart_upload,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._call(
                "AbortMultipartUpload",
                self.client.abort_multipart_upload,
                Key=key,
                UploadId=upload_id,
            )
        except (FileNotFoundError, Unavailable):
            pass  # an upload never completed is never visible; the bucket's lifecycle rule
            # for incomplete multipart uploads (see docs) reclaims its parts

    def delete_key(self, key: str) -> None:
        try:
            self._call("DeleteObject", self.client.delete_object, Key=key)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        self._parts.shutdown(wait=False, cancel_futures=True)
