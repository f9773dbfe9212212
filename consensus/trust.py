"""Content trust's facts in the state: each GUN's TUF metadata (every stored version of
each role), the timestamp and snapshot keys the trust service holds for it, which GUNs
name a repository, and the change feed.

Validation (signatures, versions, delegations) runs on the proposing replica
(replica/trust/validation.py) against the state it read; a publish is applied only if
the GUN's timestamp has not moved since, so two publishes racing on one GUN cannot
both win: the second is refused with VERSION and validated again by its replica.

Key layout:

    tm\\0<gun>\\0<role>\\0<version, 10 digits>  -> the signed JSON
    tc\\0<gun>\\0<role>                         -> "<current version> <sha256 hex>"
    th\\0<gun>\\0<role>\\0<sha256 hex>           -> version (GET role.<sha256>.json)
    tk\\0<gun>\\0<role>\\0<seq, 6 digits>        -> PutTrustKey (oldest first)
    tg\\0<repository>\\0<gun>                    -> "" (the GUNs of a repository)
    tf\\0<seq, 16 digits>                        -> JSON change (the change feed)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import lmdb

from consensus.accounts import key, scan
from proto import commands_pb2 as pb

ROOT, TARGETS, SNAPSHOT, TIMESTAMP = "root", "targets", "snapshot", "timestamp"
# Versions kept per role (root keeps more: clients walk its chain from the one they know).
KEPT_VERSIONS = 20
KEPT_ROOTS = 100
KEPT_CHANGES = 10_000
# Bounds on what one account's pushes can make the state hold: names per repository
# (a GUN's host part is the client's to choose) and held keys per role (rotations).
MAX_GUNS_PER_REPOSITORY = 16
KEPT_KEYS = 8
_FEED_SEQ = b"tF"


@dataclass(frozen=True)
class Current:
    version: int
    sha256: str


def current(txn: lmdb.Transaction, gun: str, role: str) -> Current | None:
    raw = txn.get(key(b"tc", gun, role))
    if raw is None:
        return None
    version, _, sha = bytes(raw).decode().partition(" ")
    return Current(int(version), sha)


def version_of(txn: lmdb.Transaction, gun: str, role: str, version: int) -> bytes | None:
    raw = txn.get(key(b"tm", gun, role, f"{version:010d}"))
    return bytes(raw) if raw is not None else None


def current_data(txn: lmdb.Transaction, gun: str, role: str) -> bytes | None:
    found = current(txn, gun, role)
    return version_of(txn, gun, role, found.version) if found else None


def by_checksum(txn: lmdb.Transaction, gun: str, role: str, sha256: str) -> bytes | None:
    raw = txn.get(key(b"th", gun, role, sha256))
    return version_of(txn, gun, role, int(bytes(raw))) if raw is not None else None


def roles(txn: lmdb.Transaction, gun: str) -> dict[str, Current]:
    """Every role the GUN has metadata for, with its current version."""
    prefix = key(b"tc", gun, "")
    out: dict[str, Current] = {}
    for k, value in scan(txn, prefix):
        version, _, sha = value.decode().partition(" ")
        out[k[len(prefix) :].decode()] = Current(int(version), sha)
    return out


def documents(txn: lmdb.Transaction, gun: str) -> dict[str, bytes]:
    """Every role's current document."""
    return {
        role: data for role in roles(txn, gun) if (data := current_data(txn, gun, role)) is not None
    }


def keys(txn: lmdb.Transaction, gun: str, role: str) -> list[pb.PutTrustKey]:
    """The keys held for a GUN's role, oldest first."""
    return [pb.PutTrustKey.FromString(v) for _, v in scan(txn, key(b"tk", gun, role, ""))]


def guns(txn: lmdb.Transaction, repository: str) -> list[str]:
    prefix = key(b"tg", repository, "")
    return [k[len(prefix) :].decode() for k, _ in scan(txn, prefix)]


def changes(txn: lmdb.Transaction, gun: str | None, after: int, limit: int) -> list[dict[str, Any]]:
    """Changes after feed id `after`, oldest first; only one GUN's if given."""
    out: list[dict[str, Any]] = []
    for _, value in scan(txn, b"tf\0"):
        change = json.loads(value)
        if change["id"] <= after or (gun is not None and change["gun"] != gun):
            continue
        out.append(change)
        if len(out) >= limit:
            break
    return out


# ---- applying -------------------------------------------------------------------------


def _publish(txn: lmdb.Transaction, c: pb.PublishTrust) -> pb.Result:
    refused = _new_gun_refused(txn, c.repository, c.gun)
    if refused is not None:
        return refused
    stamp = current(txn, c.gun, TIMESTAMP)
    if (stamp.version if stamp else 0) != c.expected_timestamp:
        return pb.Result(
            error_code="VERSION",
            message=f"{c.gun} changed while this update was checked: publish again",
        )
    for f in c.files:
        now = current(txn, c.gun, f.role)
        if now is not None and f.version <= now.version and f.role != ROOT:
            return pb.Result(
                error_code="VERSION",
                message=f"{f.role} version {f.version} is not newer than {now.version}",
            )
    for f in c.files:
        sha = hashlib.sha256(f.data).hexdigest()
        txn.put(key(b"tm", c.gun, f.role, f"{f.version:010d}"), f.data)
        txn.put(key(b"th", c.gun, f.role, sha), str(f.version).encode())
        txn.put(key(b"tc", c.gun, f.role), f"{f.version} {sha}".encode())
        kept = KEPT_ROOTS if f.role == ROOT else KEPT_VERSIONS
        _forget_old(txn, c.gun, f.role, f.version - kept)
        if f.role == TIMESTAMP:
            _feed(txn, c.gun, f.version, sha, c.at_ms, "update")
    txn.put(key(b"tg", c.repository, c.gun), b"")
    return pb.Result()


def _new_gun_refused(txn: lmdb.Transaction, repository: str, gun: str) -> pb.Result | None:
    if txn.get(key(b"tg", repository, gun)) is not None:
        return None
    if len(guns(txn, repository)) >= MAX_GUNS_PER_REPOSITORY:
        return pb.Result(
            error_code="INVALID_UPDATE",
            message=f"{repository} already has trust data under "
            f"{MAX_GUNS_PER_REPOSITORY} names: delete one (notary delete --remote) first",
        )
    return None


def _forget_old(txn: lmdb.Transaction, gun: str, role: str, below: int) -> None:
    for k, data in list(scan(txn, key(b"tm", gun, role, ""))):
        if int(k.rsplit(b"\0", 1)[1]) >= below:
            break
        txn.delete(k)
        txn.delete(key(b"th", gun, role, hashlib.sha256(data).hexdigest()))


def _feed(txn: lmdb.Transaction, gun: str, version: int, sha: str, at_ms: int, kind: str) -> None:
    raw = txn.get(_FEED_SEQ)
    seq = int(bytes(raw)) + 1 if raw else 1
    txn.put(_FEED_SEQ, str(seq).encode())
    change = {
        "id": seq,
        "gun": gun,
        "version": version,
        "sha256": sha,
        "at_ms": at_ms,
        "category": kind,
    }
    txn.put(f"tf\0{seq:016d}".encode(), json.dumps(change, sort_keys=True).encode())
    if seq > KEPT_CHANGES:
        txn.delete(f"tf\0{seq - KEPT_CHANGES:016d}".encode())


def _put_key(txn: lmdb.Transaction, c: pb.PutTrustKey) -> pb.Result:
    held = list(scan(txn, key(b"tk", c.gun, c.role, "")))
    if held and not c.rotate:
        # Two replicas made a key at once: the first one committed is the GUN's.
        return pb.Result(message=pb.PutTrustKey.FromString(held[-1][1]).key_id)
    refused = _new_gun_refused(txn, c.repository, c.gun)
    if refused is not None:
        return refused
    seq = int(held[-1][0].rsplit(b"\0", 1)[1]) + 1 if held else 0
    txn.put(key(b"tk", c.gun, c.role, f"{seq:06d}"), c.SerializeToString())
    for old, _ in held[: max(0, len(held) + 1 - KEPT_KEYS)]:
        txn.delete(old)  # the oldest rotated-out keys; a root names one of the newest
    txn.put(key(b"tg", c.repository, c.gun), b"")
    return pb.Result(message=c.key_id)


def _delete(txn: lmdb.Transaction, c: pb.DeleteTrust) -> pb.Result:
    for prefix in (b"tm", b"tc", b"th", b"tk"):
        for k, _ in list(scan(txn, key(prefix, c.gun, ""))):
            txn.delete(k)
    txn.delete(key(b"tg", c.repository, c.gun))
    _feed(txn, c.gun, 0, "", c.at_ms, "deletion")
    return pb.Result()


def delete_repository(txn: lmdb.Transaction, repository: str) -> None:
    """A deleted repository's trust data goes with it."""
    for gun in guns(txn, repository):
        _delete(txn, pb.DeleteTrust(gun=gun, repository=repository))


AUDITED = ("publish_trust", "put_trust_key", "delete_trust")

APPLY: dict[str, Any] = {
    "publish_trust": _publish,
    "put_trust_key": _put_key,
    "delete_trust": _delete,
}
