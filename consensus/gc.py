"""Garbage collection in the state machine: deciding, through Raft, which blobs go.

A blob is garbage when no manifest references it and it was last linked into a
repository longer ago than a grace period (a push uploads its layers before its
manifest). The race that matters is a manifest PUT naming a blob the collector has
just chosen. Both go through the log, so one is ordered before the other:

1. `BeginCollection` opens a new epoch (key G). From then on, every manifest that
   references a blob and every link of a blob into a repository stamps the blob
   with the epoch (key g/DIGEST).
2. The collector marks over a state that includes the BeginCollection entry: every
   manifest in it is seen, so a blob it finds unreferenced had no reference when
   the epoch began.
3. `CollectBlobs(epoch, blobs)` removes each blob (its record, its repository links,
   its stamp) unless its stamp is at least the epoch: a manifest or a link committed
   after the epoch began, that the mark may not have seen, keeps it.

So a manifest PUT ordered before CollectBlobs keeps its blobs; one ordered after it
finds the links gone and is refused with MANIFEST_BLOB_UNKNOWN (the client uploads
again). No acknowledged manifest ever points at a collected blob. Each replica
then deletes its files of collected blobs (replica side).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import lmdb

from consensus.accounts import key
from proto import commands_pb2 as pb

_EPOCH = b"G"
_SEP = b"\0"


_EPOCH_VALUE = struct.Struct(">QQ")  # the epoch, when the first one began (ms)


def epoch(txn: lmdb.Transaction) -> int:
    """The current collection epoch; 0 until a collection ever began."""
    raw = txn.get(_EPOCH)
    return int(_EPOCH_VALUE.unpack(bytes(raw))[0]) if raw else 0


def first_began_ms(txn: lmdb.Transaction) -> int:
    raw = txn.get(_EPOCH)
    return int(_EPOCH_VALUE.unpack(bytes(raw))[1]) if raw else 0


def note_reference(txn: lmdb.Transaction, digest: str) -> bool:
    """A manifest referenced the blob, or it was linked into a repository, now: stamp
    it with the epoch. Nothing is written before the first collection begins, so a log
    written before garbage collection existed replays into the same state; then the
    first collection waits out the grace period before it marks. True if stamped."""
    current = epoch(txn)
    if current:
        txn.put(key(b"g", digest), struct.pack(">Q", current))
    return bool(current)


def _begin(txn: lmdb.Transaction, c: pb.BeginCollection) -> pb.Result:
    first = first_began_ms(txn) or c.at_ms
    txn.put(_EPOCH, _EPOCH_VALUE.pack(epoch(txn) + 1, first))
    return pb.Result()


def _collect(txn: lmdb.Transaction, c: pb.CollectBlobs) -> pb.Result:
    for blob in c.blobs:
        stamp = txn.get(key(b"g", blob.digest))
        if stamp is not None and struct.unpack(">Q", bytes(stamp))[0] >= c.epoch:
            continue  # referenced or linked since the collection began: it stays
        for repository in blob.repositories:
            txn.delete(key(b"l", repository, blob.digest))
        txn.delete(key(b"b", blob.digest))
        txn.delete(key(b"g", blob.digest))
    return pb.Result()


APPLY: dict[str, Any] = {"begin_collection": _begin, "collect_blobs": _collect}


def _scan(txn: lmdb.Transaction, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    cursor = txn.cursor()
    if cursor.set_range(prefix):
        for k, v in cursor:
            if not bytes(k).startswith(prefix):
                return
            yield bytes(k), bytes(v)


def _references(record: pb.ManifestRecord) -> list[str]:
    """The blobs a manifest references; records stored before blob_digests existed
    are read from their body (config and distributable layers)."""
    if record.blob_digests:
        return list(record.blob_digests)
    try:
        doc = json.loads(record.body)
    except ValueError:
        return []
    found = []
    for part in [doc.get("config")] + list(doc.get("layers") or []):
        if isinstance(part, dict) and isinstance(part.get("digest"), str) and not part.get("urls"):
            found.append(part["digest"])
    return found


def mark(txn: lmdb.Transaction, now_ms: int, grace_ms: int) -> tuple[int, list[pb.CollectedBlob]]:
    """The epoch this state is in and the blobs that are garbage in it, with the
    repositories that link them. Reads every manifest and blob record: run it on a
    pinned read transaction, off the event loop and the Raft thread."""
    referenced: set[str] = set()
    for _, raw in _scan(txn, b"M" + _SEP):
        referenced.update(_references(pb.ManifestRecord.FromString(raw)))
    garbage: dict[str, list[str]] = {}
    prefix = b"b" + _SEP
    for k, raw in _scan(txn, prefix):
        digest = k[len(prefix) :].decode()
        if digest in referenced:
            continue
        if pb.BlobRecord.FromString(raw).linked_ms > now_ms - grace_ms:
            continue
        garbage[digest] = []
    prefix = b"l" + _SEP
    for k, _ in _scan(txn, prefix):
        repository, _, digest = k[len(prefix) :].decode().rpartition("\0")
        if digest in garbage:
            garbage[digest].append(repository)
    return epoch(txn), [
        pb.CollectedBlob(digest=d, repositories=sorted(r)) for d, r in sorted(garbage.items())
    ]
