"""Events: what happened to repositories, kept in the replicated state for
/api/v0/events and webhooks. Made at apply time from the commands themselves
(`record`), so every replica holds the same events with the same ids.

Key layout:

    ev\\0<id, 20 digits>   -> Event (id = Raft index * 10000 + its place in the command)
    E\\0count              -> how many are kept (8 bytes big-endian)
    E\\0retention          -> SetEventRetention

Bounded: after each command, the oldest go while there are more than `max_events`
or they are older than `days` (by the command's time: deterministic).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import lmdb

from consensus.accounts import key, scan
from proto import commands_pb2 as pb

_SEP = b"\0"
_PREFIX = b"ev" + _SEP
_COUNT = key(b"E", "count")
_RETENTION = key(b"E", "retention")
DEFAULT_MAX = 100_000
DEFAULT_DAYS = 30
TYPES = (
    "push",
    "tag_delete",
    "manifest_delete",
    "repository_delete",
    "sign",
    "trust_delete",
    "scan",
    "refusal",
)


def _key(event_id: int) -> bytes:
    return _PREFIX + f"{event_id:020d}".encode()


def retention(txn: lmdb.Transaction) -> tuple[int, int]:
    """(max events, days) kept."""
    raw = txn.get(_RETENTION)
    found = pb.SetEventRetention.FromString(bytes(raw)) if raw else pb.SetEventRetention()
    return found.max_events or DEFAULT_MAX, found.days or DEFAULT_DAYS


def _set_retention(txn: lmdb.Transaction, c: pb.SetEventRetention) -> pb.Result:
    if c.max_events > 10_000_000 or c.days > 3650:
        return pb.Result(error_code="INVALID_INPUT", message="at most 10,000,000 events, 10 years")
    txn.put(_RETENTION, c.SerializeToString())
    return pb.Result()


def _record_event(txn: lmdb.Transaction, c: pb.RecordEvent) -> pb.Result:
    if c.event.type not in TYPES:
        return pb.Result(error_code="INVALID_INPUT", message=f"unknown event type {c.event.type}")
    return pb.Result()  # `record` keeps it, with the id and time of its command


def _made(command: pb.Command) -> Iterator[pb.Event]:
    """The events a command that applied makes (no id or time yet)."""
    kind = command.WhichOneof("kind")
    c: Any = getattr(command, kind or "")
    actor = command.actor
    if kind == "put_manifest":
        yield pb.Event(type="push", repository=c.repository, tag=c.tag, digest=c.digest,
                       media_type=c.media_type, actor=c.pushed_by or actor)  # fmt: skip
    elif kind == "delete_tag":
        yield pb.Event(type="tag_delete", repository=c.repository, tag=c.tag, actor=actor)
    elif kind == "delete_manifest":
        yield pb.Event(type="manifest_delete", repository=c.repository, digest=c.digest,
                       actor=actor)  # fmt: skip
    elif kind == "delete_repository":
        yield pb.Event(type="repository_delete", repository=c.repository, actor=actor)
    elif kind == "prune_tags":
        for tag in c.tags:
            yield pb.Event(type="tag_delete", repository=c.repository, tag=tag.tag,
                           digest=tag.digest, actor=actor,
                           detail=json.dumps({"reason": c.reason or "retention"}))  # fmt: skip
    elif kind == "collect_manifests":
        for digest in c.digests:
            why = json.dumps({"reason": "garbage collection"})
            yield pb.Event(type="manifest_delete", repository=c.repository, digest=digest,
                           actor=actor, detail=why)  # fmt: skip
    elif kind == "publish_trust":
        yield pb.Event(type="sign", repository=c.repository, actor=actor,
                       detail=json.dumps({"gun": c.gun, "signers": list(c.signers)}))  # fmt: skip
    elif kind == "delete_trust":
        yield pb.Event(type="trust_delete", repository=c.repository, actor=actor,
                       detail=json.dumps({"gun": c.gun}))  # fmt: skip
    elif kind == "put_scan_report":
        detail = {"summary": dict(c.summary), "error": c.error, "db_version": c.db_version}
        yield pb.Event(type="scan", repository=c.repository, digest=c.manifest,
                       actor=c.scanned_by, detail=json.dumps(detail, sort_keys=True))  # fmt: skip
    elif kind == "record_event":
        made = pb.Event()
        made.CopyFrom(c.event)
        yield made


SOURCES = frozenset(
    {
        "put_manifest",
        "delete_tag",
        "delete_manifest",
        "delete_repository",
        "prune_tags",
        "collect_manifests",
        "publish_trust",
        "delete_trust",
        "put_scan_report",
        "record_event",
    }
)


def record(txn: lmdb.Transaction, index: int, command: pb.Command) -> None:
    """Keep the events of a command that applied at Raft `index`; drop the oldest
    beyond the retention."""
    count = _count(txn)
    for n, event in enumerate(_made(command)):
        event.id = index * 10_000 + min(n, 9_999)
        event.at_ms = command.at_ms
        txn.put(_key(event.id), event.SerializeToString())
        count += 1
    most, days = retention(txn)
    oldest_kept = command.at_ms - days * 86_400_000
    doomed: list[bytes] = []
    for k, v in scan(txn, _PREFIX):
        if count - len(doomed) <= most and pb.Event.FromString(v).at_ms >= oldest_kept:
            break
        doomed.append(k)
    for k in doomed:  # through the transaction, so the state's digest follows
        txn.delete(k)
    txn.put(_COUNT, struct.pack(">Q", count - len(doomed)))


def _count(txn: lmdb.Transaction) -> int:
    raw = txn.get(_COUNT)
    return int(struct.unpack(">Q", bytes(raw))[0]) if raw else 0


def events(
    txn: lmdb.Transaction,
    after: int = 0,
    limit: int = 100,
    repository: str = "",
    types: frozenset[str] = frozenset(),
    since_ms: int = 0,
    until_ms: int = 0,
    visible: Callable[[lmdb.Transaction, str], bool] | None = None,
    scanned_at_most: int = 100_000,
) -> tuple[list[pb.Event], int]:
    """Up to `limit` events after id `after` that match, oldest first, and the id to
    continue from (0 at the end). A namespace filter ends with "/"; `visible` hides
    repositories the caller may not read. At most `scanned_at_most` events are read per
    call, so a rare filter pages on."""
    out: list[pb.Event] = []
    last = after
    read = 0
    for _, v in scan(txn, _PREFIX) if not after else _after(txn, after):
        read += 1
        event = pb.Event.FromString(v)
        last = event.id
        if (
            _wanted(txn, event, repository, types, visible)
            and event.at_ms >= since_ms
            and (not until_ms or event.at_ms < until_ms)
        ):
            out.append(event)
            if len(out) >= limit:
                return out, last
        if until_ms and event.at_ms >= until_ms:
            return out, 0
        if read >= scanned_at_most:
            return out, last
    return out, 0


def latest(
    txn: lmdb.Transaction,
    limit: int = 100,
    repository: str = "",
    types: frozenset[str] = frozenset(),
    visible: Callable[[lmdb.Transaction, str], bool] | None = None,
    scanned_at_most: int = 20_000,
) -> list[pb.Event]:
    """The newest `limit` events that match, newest first (at most `scanned_at_most`
    read: a rare filter shows what the newest ones hold)."""
    out: list[pb.Event] = []
    cursor = txn.cursor()
    placed = cursor.prev() if cursor.set_range(_PREFIX + b"9" * 20) else cursor.last()
    read = 0
    while placed and bytes(cursor.key()).startswith(_PREFIX) and read < scanned_at_most:
        read += 1
        event = pb.Event.FromString(bytes(cursor.value()))
        if _wanted(txn, event, repository, types, visible):
            out.append(event)
            if len(out) >= limit:
                break
        placed = cursor.prev()
    return out


def _wanted(
    txn: lmdb.Transaction,
    event: pb.Event,
    repository: str,
    types: frozenset[str],
    visible: Callable[[lmdb.Transaction, str], bool] | None,
) -> bool:
    return (
        (not types or event.type in types)
        and matches(event.repository, repository)
        and (visible is None or visible(txn, event.repository))
    )


def matches(repository: str, scope: str) -> bool:
    """Whether a repository is in a scope: "" everything, "ns/" a namespace, else one."""
    if not scope:
        return True
    if scope.endswith("/"):
        return repository.startswith(scope)
    return repository == scope


def _after(txn: lmdb.Transaction, after: int) -> Iterator[tuple[bytes, bytes]]:
    cursor = txn.cursor()
    if cursor.set_range(_key(after + 1)):
        for k, v in cursor:
            if not bytes(k).startswith(_PREFIX):
                return
            yield bytes(k), bytes(v)


def last_id(txn: lmdb.Transaction) -> int:
    """The newest event's id (0: none)."""
    cursor = txn.cursor()
    # On the first key after every event, then one back; or on the very last key.
    placed = cursor.prev() if cursor.set_range(_PREFIX + b"9" * 20) else cursor.last()
    if placed and bytes(cursor.key()).startswith(_PREFIX):
        return int(pb.Event.FromString(bytes(cursor.value())).id)
    return 0


def by_id(txn: lmdb.Transaction, event_id: int) -> pb.Event | None:
    raw = txn.get(_key(event_id))
    return pb.Event.FromString(bytes(raw)) if raw else None


def event_json(event: pb.Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "at_ms": event.at_ms,
        "type": event.type,
        "repository": event.repository,
        "tag": event.tag,
        "digest": event.digest,
        "media_type": event.media_type,
        "actor": event.actor,
        "detail": json.loads(event.detail) if event.detail else {},
    }


APPLY: dict[str, Any] = {
    "set_event_retention": _set_retention,
    "record_event": _record_event,
}
