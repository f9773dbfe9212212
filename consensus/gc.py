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
again). No acknowledged manifest ever points at a collected blob.

Each replica then deletes its files of the collected blobs. The second race is a new
upload of a collected digest: its file lands on a replica at about the time that
replica deletes the old one. CollectBlobs counts collections (the "collections"
counter) and leaves a tombstone with the count on each blob it removes. A replica
reads the counter before it commits a copy and says so in the link (LinkBlob.seen);
the link counts a copy only if it was committed after the collection was applied
there (seen >= tombstone), and a replica deletes only files older than the moment it
applied the collection. A copy committed before it may be deleted: an upload link
naming one is refused (the client uploads again) and a link only adding holders
drops it. A link that brings no copy (a mount) needs the blob record to exist.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import lmdb

from consensus import scans
from consensus.accounts import key, scan
from proto import commands_pb2 as pb

_EPOCH = b"G"
_SEP = b"\0"
_TOMBSTONE_DAYS_MS = 86_400_000  # no copy takes a day between its commit and its link

# The epoch, when the first one began (ms), and how many CollectBlobs were applied.
# Values written before the counter existed have only the first two.
_EPOCH_VALUE = struct.Struct(">QQQ")
_TOMBSTONE = struct.Struct(">Qq")  # the collections count that removed it, when (ms)


def _counters(txn: lmdb.Transaction) -> tuple[int, int, int]:
    raw = txn.get(_EPOCH)
    if not raw:
        return 0, 0, 0
    raw = bytes(raw)
    if len(raw) == 16:
        return (*struct.unpack(">QQ", raw), 0)
    return _EPOCH_VALUE.unpack(raw)


def epoch(txn: lmdb.Transaction) -> int:
    """The current collection epoch; 0 until a collection ever began."""
    return _counters(txn)[0]


def first_began_ms(txn: lmdb.Transaction) -> int:
    return _counters(txn)[1]


def collections(txn: lmdb.Transaction) -> int:
    """How many CollectBlobs this state has applied: read before committing a copy."""
    return _counters(txn)[2]


def tombstone(txn: lmdb.Transaction, digest: str) -> tuple[int, int] | None:
    """(collections count, ms) of the collection that last removed the blob, if any
    within the last day."""
    raw = txn.get(key(b"gx", digest))
    return _TOMBSTONE.unpack(bytes(raw)) if raw else None


def counted_copies(txn: lmdb.Transaction, c: pb.LinkBlob) -> tuple[set[str], set[str]]:
    """(copies the link may count, copies it names that a collection may delete)."""
    copies = ({c.replica_id} | set(c.holders)) - {""}
    found = tombstone(txn, c.digest)
    if found is None:
        return copies, set()
    stale = {r for r in copies if c.seen.get(r, 0) < found[0]}
    return copies - stale, stale


def note_reference(txn: lmdb.Transaction, digest: str) -> bool:
    """A manifest referenced the blob, or it was linked into a repository, now: stamp
    it with the epoch. Nothing is written before the first collection begins, so a log
    written before garbage collection existed replays into the same state; then the
    grace period of blobs linked before counts from the first collection. True if
    stamped."""
    current = epoch(txn)
    if current:
        txn.put(key(b"g", digest), struct.pack(">Q", current))
    return bool(current)


def begin(txn: lmdb.Transaction, c: pb.BeginCollection) -> int:
    """Open the next epoch; its number."""
    current, first, count = _counters(txn)
    txn.put(_EPOCH, _EPOCH_VALUE.pack(current + 1, first or c.at_ms, count))
    return current + 1


def _collect(txn: lmdb.Transaction, c: pb.CollectBlobs) -> pb.Result:
    current, first, count = _counters(txn)
    count += 1
    txn.put(_EPOCH, _EPOCH_VALUE.pack(current, first, count))
    removed = freed = 0
    for blob in c.blobs:
        stamp = txn.get(key(b"g", blob.digest))
        if stamp is not None and struct.unpack(">Q", bytes(stamp))[0] >= c.epoch:
            continue  # referenced or linked since the collection began: it stays
        for repository in blob.repositories:
            txn.delete(key(b"l", repository, blob.digest))
        raw = txn.get(key(b"b", blob.digest))
        if raw is None:
            continue
        txn.delete(key(b"b", blob.digest))
        txn.delete(key(b"g", blob.digest))
        txn.delete(key(b"si", blob.digest))  # a layer's scan inventory goes with it
        _bury(txn, blob.digest, count, c.at_ms)
        removed += 1
        freed += pb.BlobRecord.FromString(bytes(raw)).size
    _forget_tombstones(txn, c.at_ms - _TOMBSTONE_DAYS_MS)
    return pb.Result(message=f"{removed} {freed}")  # blobs and bytes removed


def _bury(txn: lmdb.Transaction, digest: str, count: int, at_ms: int) -> None:
    old = tombstone(txn, digest)
    if old is not None:
        txn.delete(_tombstone_by_time(old[1], digest))
    txn.put(key(b"gx", digest), _TOMBSTONE.pack(count, at_ms))
    txn.put(_tombstone_by_time(at_ms, digest), b"")


def _tombstone_by_time(at_ms: int, digest: str) -> bytes:
    return b"gX" + _SEP + struct.pack(">q", max(at_ms, 0)) + digest.encode()


def _forget_tombstones(txn: lmdb.Transaction, before_ms: int) -> None:
    prefix = b"gX" + _SEP
    limit = _tombstone_by_time(before_ms, "")
    old = []
    for k, _ in scan(txn, prefix):  # oldest first: stop at the first young one
        if k >= limit:
            break
        old.append(k)
    for k in old:
        txn.delete(k)
        txn.delete(key(b"gx", k[len(prefix) + 8 :].decode()))


def blob_recorded(txn: lmdb.Transaction, digest: str) -> bool:
    return txn.get(key(b"b", digest)) is not None


def tombstones(txn: lmdb.Transaction) -> Iterator[tuple[str, int]]:
    """(digest, ms) of the blobs collections removed within the last day."""
    prefix = b"gx" + _SEP
    for k, v in scan(txn, prefix):
        yield k[len(prefix) :].decode(), _TOMBSTONE.unpack(v)[1]


APPLY: dict[str, Any] = {"collect_blobs": _collect}


def references(record: pb.ManifestRecord) -> list[str]:
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
    epoch_now, first_began, _ = _counters(txn)
    # The vulnerability database's archives are blobs no manifest names.
    referenced: set[str] = set(scans.referenced_blobs(txn))
    for _, raw in scan(txn, b"M" + _SEP):
        referenced.update(references(pb.ManifestRecord.FromString(raw)))
    garbage: dict[str, pb.CollectedBlob] = {}
    prefix = b"b" + _SEP
    for k, raw in scan(txn, prefix):
        digest = k[len(prefix) :].decode()
        if digest in referenced:
            continue
        record = pb.BlobRecord.FromString(raw)
        # Links made before collections existed carry no time: their grace period
        # counts from the first collection.
        if (record.linked_ms or first_began) > now_ms - grace_ms:
            continue
        garbage[digest] = pb.CollectedBlob(digest=digest, size=record.size)
    prefix = b"l" + _SEP
    for k, _ in scan(txn, prefix):
        repository, _, digest = k[len(prefix) :].decode().rpartition("\0")
        if digest in garbage:
            garbage[digest].repositories.append(repository)
    return epoch_now, [garbage[d] for d in sorted(garbage)]


def manifest_count(txn: lmdb.Transaction) -> int:
    return sum(1 for _ in scan(txn, b"M" + _SEP))
