"""`qreg storage migrate`: copy every blob of a running cluster into another blob store.

To object storage (--to s3): every blob the metadata lists goes into the bucket of the
replica config's [s3] section, through the store's own writer, so each is verified
against its digest before its key exists. Back to local disks (--to local --into
DIR): into a replica's storage directory in the local layout; that replica records
the copies it finds there and its peers copy them from it.

Blobs already in the target with their size are skipped: a second run resumes an
interrupted one, and picks up blobs pushed meanwhile. Switching `blobs.backend` on
each replica (a rolling restart) is the operator's step; run the migration before
and once more after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from cli.cluster_client import ClusterClient, ClusterUnreachable, error_of
from cli.output import fail
from replica import config as replica_config
from replica.blobs.backend import blob_store
from replica.blobs.s3store import S3BlobStore
from replica.blobs.store import BlobStore, LocalBlobStore
from replica.errors import RegistryError

_DEFAULT_CONFIG = "./data/replica-0/replica.toml"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "storage",
        help="move the cluster's blobs between local disks and object storage",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="storage_command", required=True)
    m = sub.add_parser(
        "migrate",
        help="copy every blob of the running cluster into the target store (resumable)",
        description="Copy every blob the cluster's metadata lists into the target store, "
        "verifying each; blobs already there are skipped, so it resumes and can run again "
        "after the switch.",
        epilog="examples:\n"
        "  # [s3] filled in the config (blobs.backend still local), then:\n"
        "  qreg storage migrate --to s3 --config ./data/replica-0/replica.toml\n"
        "  # back: into replica-0's own storage directory\n"
        "  qreg storage migrate --to local --into ./data/replica-0/storage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("--to", choices=("s3", "local"), required=True, help="the target store")
    m.add_argument(
        "--config",
        default=_DEFAULT_CONFIG,
        help="a replica's config: the cluster to read (its URL and secret) and, for "
        f"--to s3, the [s3] settings of the bucket (default {_DEFAULT_CONFIG})",
    )
    m.add_argument("--into", metavar="DIR", help="with --to local: a replica's storage directory")
    m.set_defaults(func=migrate)


class _Refused(Exception):
    pass


def migrate(args: argparse.Namespace) -> int:
    try:
        target = _target(args)
    except _Refused as e:
        return fail("storage migrate", str(e))
    try:
        with ClusterClient(args.config, timeout=300) as cluster:
            copied, skipped, total = copy_all(cluster, target)
    except ClusterUnreachable as e:
        return fail("storage migrate", str(e))
    except (RegistryError, RuntimeError) as e:
        print(file=sys.stderr)
        return fail("storage migrate", f"stopped (run it again to resume): {e}")
    finally:
        if isinstance(target, S3BlobStore):
            target.close()
    print(
        f"{copied} blobs copied, {skipped} already there; "
        f"{total / (1 << 20):.1f} MiB in the target store"
    )
    return 0


def _target(args: argparse.Namespace) -> BlobStore:
    if args.to == "local":
        if not args.into:
            raise _Refused("--to local needs --into DIR: a replica's storage directory")
        return LocalBlobStore(args.into, owner=False)  # a running replica's, maybe
    try:
        config = replica_config.load(args.config)
    except replica_config.ConfigError as e:
        raise _Refused(str(e)) from None
    if not config.s3_bucket:
        raise _Refused(f"{args.config} has no [s3] bucket: fill in its [s3] section first")
    return blob_store(dataclasses.replace(config, blobs_backend="s3"))


def blob_pages(cluster: ClusterClient) -> Iterator[list[tuple[str, int]]]:
    after = ""
    while True:
        r = cluster.request("GET", "/api/v0/backup/blobs", params={"after": after})
        if r.status_code != 200:
            raise RuntimeError(f"listing blobs: {error_of(r)}")
        body = r.json()
        yield [(d, int(size)) for d, size in body["blobs"]]
        if not body["next"]:
            return
        after = body["next"]


def copy_all(cluster: ClusterClient, target: BlobStore) -> tuple[int, int, int]:
    """(blobs copied, blobs already there, bytes in all) once every blob is in `target`."""
    copied = skipped = done_bytes = seen = 0
    started = time.monotonic()
    for page in blob_pages(cluster):
        for digest, size in page:
            seen += 1
            if target.stat(digest) == size:
                skipped += 1
            else:
                _copy(cluster, target, digest, size)
                copied += 1
            done_bytes += size
            rate = done_bytes / max(time.monotonic() - started, 1e-3) / (1 << 20)
            print(
                f"\rblobs {seen} ({copied} copied, {skipped} there)  "
                f"{done_bytes / (1 << 20):.1f} MiB  {rate:.1f} MiB/s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if seen:
        print(file=sys.stderr)
    return copied, skipped, done_bytes


def _copy(cluster: ClusterClient, target: BlobStore, digest: str, size: int) -> None:
    writer = target.writer(digest)
    try:
        with cluster.stream("GET", f"/api/v0/backup/blobs/{digest}") as r:
            if r.status_code != 200:
                r.read()
                raise RuntimeError(f"{digest}: {error_of(r)}")
            for chunk in r.iter_bytes(1 << 20):
                writer.write(chunk)
    except httpx.HTTPError as e:
        writer.discard()
        raise RuntimeError(f"{digest}: {e}") from None
    except BaseException:
        writer.discard()
        raise
    target.commit(writer, digest, size)  # verified: a wrong byte raises, nothing stays
