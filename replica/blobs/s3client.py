"""Reaching an S3-compatible object store: settings, a configured boto3 client, and
its failures as the registry's UNAVAILABLE error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import botocore.config
import botocore.exceptions

from replica.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class S3Settings:
    endpoint: str  # https://s3.example.com; empty: AWS's own for the region
    bucket: str
    region: str = "us-east-1"
    access_key: str = ""  # empty: boto3's chain (AWS_ACCESS_KEY_ID, a profile, a role)
    secret_key: str = ""
    path_style: bool = True  # http://endpoint/bucket/key, as most self-hosted stores want
    ca_bundle: str = ""  # a PEM file to verify the endpoint's certificate with
    prefix: str = ""  # keys start with it: several registries can share a bucket


class ObjectStoreUnavailable(Unavailable):
    """The object store did not answer or refused: 503, and clients retry."""

    def __init__(self, what: str, error: Exception) -> None:
        super().__init__(
            f"the object store is unreachable: {what} failed ({brief(error)})",
            headers={"Retry-After": "5"},
        )


def brief(error: Exception) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', '?')}: {info.get('Message', '')}".strip()
    return type(error).__name__ + (f": {error}" if str(error) else "")


def is_missing(error: Exception) -> bool:
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")
    return False


def make_client(settings: S3Settings, pool: int = 32) -> S3Client:
    config = botocore.config.Config(
        region_name=settings.region,
        s3={"addressing_style": "path" if settings.path_style else "virtual"},
        signature_version="s3v4",
        # A store that stops answering fails a push within seconds, not minutes.
        connect_timeout=3,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=pool,
        # Every blob's sha256 is checked by us; CRC trailers would only cost CPU.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint or None,
        aws_access_key_id=settings.access_key or None,
        aws_secret_access_key=settings.secret_key or None,
        verify=settings.ca_bundle or None,
        config=config,
    )
