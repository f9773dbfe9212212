"""Listings of the blob records (`b\\0<digest>` -> BlobRecord: size and holders), for
`state.view`: what a replica lacks (background sync, backups) and pages of them all
(`qreg storage migrate`)."""

from __future__ import annotations

import lmdb

from consensus.accounts import scan
from proto import commands_pb2 as pb

_PREFIX = b"b\0"


def missing_from(txn: lmdb.Transaction, replica_id: str) -> list[tuple[str, int, list[str]]]:
    """(digest, size, holders) of every blob that `replica_id` does not hold."""
    out = []
    for key, value in scan(txn, _PREFIX):
        record = pb.BlobRecord.FromString(value)
        if replica_id not in record.replicas:
            out.append((key[len(_PREFIX) :].decode(), record.size, list(record.replicas)))
    return out


def after(txn: lmdb.Transaction, last: str, limit: int) -> list[tuple[str, int]]:
    """(digest, size) of up to `limit` blob records, in digest order after `last`."""
    start = _PREFIX + last.encode() + b"\0" if last else _PREFIX
    out: list[tuple[str, int]] = []
    cursor = txn.cursor()
    if cursor.set_range(start):
        for raw_key, value in cursor:
            key = bytes(raw_key)
            if not key.startswith(_PREFIX) or len(out) >= limit:
                break
            out.append((key[len(_PREFIX) :].decode(), pb.BlobRecord.FromString(bytes(value)).size))
    return out
