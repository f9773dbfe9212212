"""The blob store a replica's config asks for: its own disk, or a shared bucket."""

from __future__ import annotations

from replica.blobs.s3store import S3BlobStore, S3Settings
from replica.blobs.store import BlobStore, LocalBlobStore
from replica.config import ReplicaConfig


def blob_store(config: ReplicaConfig) -> BlobStore:
    """The replica's blob store: its own disk, or the bucket every replica shares."""
    if config.blobs_backend != "s3":
        return LocalBlobStore(config.path("storage"))
    settings = S3Settings(
        endpoint=config.s3_endpoint.rstrip("/"),
        bucket=config.s3_bucket,
        region=config.s3_region,
        access_key=config.s3_access_key,
        secret_key=config.s3_secret_key,
        path_style=config.s3_path_style,
        ca_bundle=config.s3_ca_bundle,
        prefix=config.s3_prefix,
    )
    redirect_s = config.blobs_redirect_s if config.blobs_redirect else 0
    return S3BlobStore(settings, config.path("storage"), redirect_s=redirect_s)
