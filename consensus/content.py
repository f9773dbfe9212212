"""Applying the registry's own commands: blob links, manifests, tags, replicas, and the
dispatch of every command kind to the module that applies it (accounts.py, caches.py,
gc.py). Each function runs inside the state machine's write transaction, in log order,
and must be deterministic: the same entry gives the same state on every replica.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import lmdb

from consensus import (
    accounts,
    caches,
    directory,
    events,
    gc,
    gc_manifests,
    gc_runs,
    policies,
    scans,
    trust,
    webhooks,
)
from consensus.accounts import key as _key
from consensus.accounts import scan
from proto import commands_pb2 as pb

_SEP = b"\0"


def _fail(code: str, message: str) -> pb.Result:
    return pb.Result(error_code=code, message=message)


def _forget_copies(txn: lmdb.Transaction, replica_id: str) -> None:
    prefix = b"b" + _SEP
    changed = []
    cursor = txn.cursor()
    if cursor.set_range(prefix):
        for key, value in cursor:
            if not bytes(key).startswith(prefix):
                break
            record = pb.BlobRecord.FromString(bytes(value))
            if replica_id in record.replicas:
                record.replicas.remove(replica_id)
                changed.append((bytes(key), record.SerializeToString()))
    for key, value in changed:  # not while the cursor walks
        txn.put(key, value)


def _unlink_blob(txn: lmdb.Transaction, c: pb.UnlinkBlob) -> pb.Result:
    if not txn.delete(_key(b"l", c.repository, c.digest)):
        return _fail("BLOB_UNKNOWN", f"blob {c.digest} is not linked in {c.repository}")
    return pb.Result()


def _unregister_replica(txn: lmdb.Transaction, c: pb.UnregisterReplica) -> pb.Result:
    if c.forget_copies:
        _forget_copies(txn, c.replica_id)
    if not txn.delete(_key(b"R", c.replica_id)):
        return _fail("NAME_UNKNOWN", f"no replica {c.replica_id}")
    return pb.Result()


def _register_replica(txn: lmdb.Transaction, c: pb.RegisterReplica) -> pb.Result:
    txn.put(_key(b"R", c.replica_id), c.SerializeToString())
    return pb.Result()


def _delete_tag(txn: lmdb.Transaction, c: pb.DeleteTag) -> pb.Result:
    if refused := policies.immutable_tag(txn, c.repository, c.tag):
        return refused
    if not txn.delete(_key(b"t", c.repository, c.tag)):
        return _fail("MANIFEST_UNKNOWN", f"tag {c.tag} is unknown in {c.repository}")
    return pb.Result()


def _link_blob(txn: lmdb.Transaction, c: pb.LinkBlob) -> pb.Result:
    key = _key(b"b", c.digest)
    raw = txn.get(key)
    # Copies a collection may delete do not count (gc.py); a link that brings none
    # needs the blob to be known.
    copies, stale = gc.counted_copies(txn, c)
    if stale and c.repository:
        return _fail(
            "BLOB_UPLOAD_INVALID",
            f"blob {c.digest} was garbage-collected while it was being stored: upload it again",
        )
    if raw is None and (not copies or not c.repository):
        return _fail("BLOB_UNKNOWN", f"blob {c.digest} is unknown")
    if c.repository:  # without one, the command only records more holders
        txn.put(_key(b"r", c.repository), b"")
        txn.put(_key(b"l", c.repository, c.digest), struct.pack(">Q", c.size))
    record = pb.BlobRecord.FromString(bytes(raw)) if raw else pb.BlobRecord(size=c.size)
    known = set(record.replicas)
    holders = known | copies
    changed = raw is None or holders != known
    # A link into a repository counts as a reference for garbage collection (its
    # manifest may follow), and its time starts the grace period.
    if c.repository and gc.note_reference(txn, c.digest) and c.at_ms > record.linked_ms:
        record.linked_ms = c.at_ms
        changed = True
    if changed:
        del record.replicas[:]
        record.replicas.extend(sorted(holders))
        txn.put(key, record.SerializeToString())
    return pb.Result()


def _set_scan_archive(txn: lmdb.Transaction, c: pb.SetScanArchive) -> pb.Result:
    """A vulnerability database's zip is a blob no repository links: its record is
    made here, from the copies the importing replica stored (gc.py keeps it)."""
    if c.archive.digest:
        held = pb.LinkBlob(digest=c.archive.digest, size=c.archive.size, seen=c.copies)
        held.holders.extend(sorted(c.copies))
        copies, stale = gc.counted_copies(txn, held)
        if stale or not copies:
            return _fail(
                "BLOB_UPLOAD_INVALID", "the archive was collected while stored: import it again"
            )
        key = _key(b"b", c.archive.digest)
        raw = txn.get(key)
        record = pb.BlobRecord.FromString(bytes(raw)) if raw else pb.BlobRecord(size=c.archive.size)
        holders = set(record.replicas) | copies
        del record.replicas[:]
        record.replicas.extend(sorted(holders))
        record.linked_ms = max(record.linked_ms, c.at_ms)
        txn.put(key, record.SerializeToString())
    return scans.APPLY["set_scan_archive"](txn, c)  # type: ignore[no-any-return]


def _put_manifest(txn: lmdb.Transaction, c: pb.PutManifest) -> pb.Result:
    # Checked here, inside the log's order, so a concurrent delete cannot slip
    # between the check and the write.
    for digest in c.blob_digests:
        if txn.get(_key(b"l", c.repository, digest)) is None:
            return _fail("MANIFEST_BLOB_UNKNOWN", f"blob {digest} is not in {c.repository}")
    for digest in c.manifest_digests:
        if txn.get(_key(b"M", c.repository, digest)) is None:
            return _fail("MANIFEST_UNKNOWN", f"manifest {digest} is not in {c.repository}")
    if c.tag and txn.get(_key(b"t", c.repository, c.tag)) != c.digest.encode():
        if refused := policies.immutable_tag(txn, c.repository, c.tag):
            return refused
    stamped = [gc.note_reference(txn, digest) for digest in c.blob_digests]
    if c.tag:
        gc_manifests.note_reference(txn, c.repository, c.digest)
    for child in c.manifest_digests:
        gc_manifests.note_reference(txn, c.repository, child)
    record = pb.ManifestRecord(
        media_type=c.media_type,
        body=c.body,
        subject_digest=c.subject_digest,
        referrer=c.referrer,
        pushed_at_ms=c.pushed_at_ms,
        pushed_by=c.pushed_by,
        # What the collector's mark reads; kept only once collections exist, so a log
        # from before replays into the same state (older records are parsed instead).
        blob_digests=list(c.blob_digests) if any(stamped) else [],
    )
    txn.put(_key(b"r", c.repository), b"")
    txn.put(_key(b"M", c.repository, c.digest), record.SerializeToString())
    if c.tag:
        txn.put(_key(b"t", c.repository, c.tag), c.digest.encode())
    if c.subject_digest:
        txn.put(_key(b"f", c.repository, c.subject_digest, c.digest), b"")
    return pb.Result()


def _delete_manifest(txn: lmdb.Transaction, c: pb.DeleteManifest) -> pb.Result:
    key = _key(b"M", c.repository, c.digest)
    raw = txn.get(key)
    if raw is None:
        return _fail("MANIFEST_UNKNOWN", f"manifest {c.digest} is unknown in {c.repository}")
    record = pb.ManifestRecord.FromString(bytes(raw))
    # Every tag that points at the manifest goes with it, unless one is immutable.
    prefix = _key(b"t", c.repository) + _SEP
    cursor = txn.cursor()
    doomed: list[bytes] = []
    if cursor.set_range(prefix):
        for found, value in cursor:
            if not bytes(found).startswith(prefix):
                break
            if value == c.digest.encode() and _SEP not in found[len(prefix) :]:
                doomed.append(bytes(found))
    for tag_key in doomed:
        tag = tag_key[len(prefix) :].decode()
        if refused := policies.immutable_tag(txn, c.repository, tag):
            return refused
    txn.delete(key)
    if record.subject_digest:
        txn.delete(_key(b"f", c.repository, record.subject_digest, c.digest))
    for tag_key in doomed:
        txn.delete(tag_key)
    return pb.Result()


def _prune_tags(txn: lmdb.Transaction, c: pb.PruneTags) -> pb.Result:
    rules = policies.policy(txn, c.repository)
    pruned = 0
    for tag in c.tags:
        key = _key(b"t", c.repository, tag.tag)
        if txn.get(key) != tag.digest.encode() or policies.covers(rules, tag.tag):
            continue  # pushed again since, or immutable
        txn.delete(key)
        pruned += 1
        if not _tagged(txn, c.repository, tag.digest):  # its last tag: the image goes
            _delete_manifest(txn, pb.DeleteManifest(repository=c.repository, digest=tag.digest))
    return pb.Result(message=str(pruned))


def _tagged(txn: lmdb.Transaction, repository: str, digest: str) -> bool:
    wanted = digest.encode()
    return any(value == wanted for _, value in scan(txn, _key(b"t", repository) + _SEP))


def _collect_manifests(txn: lmdb.Transaction, c: pb.CollectManifests) -> pb.Result:
    removed = 0
    for digest in c.digests:
        if gc_manifests.referenced_since(txn, c.repository, digest, c.epoch):
            continue  # tagged or named by an index since the collection began
        if _tagged(txn, c.repository, digest):
            continue
        if not _delete_manifest(
            txn, pb.DeleteManifest(repository=c.repository, digest=digest)
        ).error_code:
            gc_manifests.forget(txn, c.repository, digest)
            removed += 1
    return pb.Result(message=str(removed))


def _delete_repository(txn: lmdb.Transaction, c: pb.DeleteRepository) -> pb.Result:
    rules = policies.policy(txn, c.repository)
    if rules.immutable_tags:
        prefix = _key(b"t", c.repository) + _SEP
        for found, _ in scan(txn, prefix):
            if policies.covers(rules, found[len(prefix) :].decode()):
                return _fail(
                    "DENIED",
                    f"{c.repository} has immutable tags: an administrator of the "
                    "repository lifts immutability before deleting it",
                )
    txn.delete(_key(b"rp", c.repository))
    trust.delete_repository(txn, c.repository)
    return accounts.APPLY["delete_repository"](txn, c)


# Command kind -> what applying it does (accounts.py and caches.py keep their own).
_APPLY: dict[str, Callable[[Any, Any], pb.Result]] = {
    "link_blob": _link_blob,
    "unlink_blob": _unlink_blob,
    "put_manifest": _put_manifest,
    "delete_manifest": _delete_manifest,
    "delete_tag": _delete_tag,
    "register_replica": _register_replica,
    "unregister_replica": _unregister_replica,
    **accounts.APPLY,
    **caches.APPLY,
    **directory.APPLY,
    **events.APPLY,
    **gc.APPLY,
    **gc_runs.APPLY,
    **policies.APPLY,
    **scans.APPLY,
    **trust.APPLY,
    **webhooks.APPLY,
    "delete_repository": _delete_repository,
    "prune_tags": _prune_tags,
    "collect_manifests": _collect_manifests,
    "set_scan_archive": _set_scan_archive,
}


def apply(txn: lmdb.Transaction, command: pb.Command) -> pb.Result:
    """Apply one command; a refusal is a Result with an error code, never an exception."""
    kind = command.WhichOneof("kind")
    apply = _APPLY.get(kind or "")
    if apply is None:
        return _fail("UNSUPPORTED", f"unknown command {kind!r}")
    return apply(txn, getattr(command, kind or ""))
