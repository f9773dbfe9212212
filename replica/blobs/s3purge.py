"""The leader's clean-up of what abandoned uploads leave in the bucket: session objects
of replicas that died before they could remove them, and multipart uploads of a
replica killed mid-push (never visible, but billed until aborted)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import botocore.exceptions

from replica.blobs.s3client import ObjectStoreUnavailable
from replica.blobs.s3store import S3BlobStore

log = logging.getLogger("qreg.blobs")


def purge_uploads(store: S3BlobStore, before: float) -> int:
    """Delete objects under uploads/ last written before `before` (our clock), and
    abort multipart uploads begun before it; how many went."""
    gone = 0
    cutoff = before + store.clock_offset  # LastModified and Initiated are the store's clock
    try:
        pages = store.client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=f"{store.prefix}uploads/"
        )
        for page in pages:
            for item in page.get("Contents", []):
                if item["LastModified"].timestamp() < cutoff:
                    store.delete_key(item["Key"])
                    gone += 1
        uploads = store.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=store.bucket, Prefix=store.prefix
        )
        for listed in uploads:
            for upload in listed.get("Uploads", []):
                if upload["Initiated"].timestamp() < cutoff:
                    store.abort_multipart(upload["Key"], upload["UploadId"])
                    gone += 1
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise ObjectStoreUnavailable("listing uploads", e) from e
    return gone


async def purge_forever(
    store: S3BlobStore, leads: Callable[[], bool], older_than_s: float, every_s: float = 3600.0
) -> None:
    """On the leader, every `every_s`: purge uploads abandoned over `older_than_s` ago."""
    while True:
        await asyncio.sleep(every_s)
        if not leads():
            continue
        try:
            gone = await asyncio.to_thread(purge_uploads, store, time.time() - older_than_s)
            if gone:
                log.info("removed %d objects and uploads of abandoned uploads", gone)
        except Exception:
            log.exception("purging abandoned uploads failed; it runs again")
