"""Webhooks in the replicated state: their settings, the lease of the replica that
delivers each one's events, how far its deliveries are settled, and its delivery log.

Key layout:

    wh\\0<id>               -> Webhook
    wl\\0<id>               -> ClaimWebhook (the delivering replica's lease)
    wc\\0<id>               -> settled event id, 8 bytes big-endian (every event up to it
                              delivered or given up)
    wd\\0<id>\\0<event, 20>  -> Delivery (the log, and redeliveries asked for: "pending")

The log keeps the newest LOG_KEPT deliveries of each webhook.
"""

from __future__ import annotations

import struct
from typing import Any

import lmdb

from consensus import events
from consensus.accounts import key, scan
from proto import commands_pb2 as pb

_SEP = b"\0"
LOG_KEPT = 200


def _fail(code: str, message: str) -> pb.Result:
    return pb.Result(error_code=code, message=message)


def webhook(txn: lmdb.Transaction, webhook_id: str) -> pb.Webhook | None:
    raw = txn.get(key(b"wh", webhook_id))
    return pb.Webhook.FromString(bytes(raw)) if raw else None


def webhooks(txn: lmdb.Transaction) -> list[pb.Webhook]:
    return [pb.Webhook.FromString(v) for _, v in scan(txn, b"wh" + _SEP)]


def lease(txn: lmdb.Transaction, webhook_id: str) -> pb.ClaimWebhook | None:
    raw = txn.get(key(b"wl", webhook_id))
    return pb.ClaimWebhook.FromString(bytes(raw)) if raw else None


def settled(txn: lmdb.Transaction, webhook_id: str) -> int:
    raw = txn.get(key(b"wc", webhook_id))
    return int(struct.unpack(">Q", bytes(raw))[0]) if raw else 0


def deliveries(txn: lmdb.Transaction, webhook_id: str, limit: int = 50) -> list[pb.Delivery]:
    """The newest `limit` deliveries, newest first."""
    found = [pb.Delivery.FromString(v) for _, v in scan(txn, key(b"wd", webhook_id, ""))]
    return list(reversed(found))[:limit]


def redeliveries(txn: lmdb.Transaction, webhook_id: str) -> list[int]:
    """Events an administrator asked to deliver again."""
    return [d.event for d in deliveries(txn, webhook_id, LOG_KEPT) if d.status == "pending"]


def _put(txn: lmdb.Transaction, c: pb.PutWebhook) -> pb.Result:
    hook = c.webhook
    current = webhook(txn, hook.id)
    if current is not None and c.create_only:
        return _fail("ALREADY_EXISTS", f"a webhook {hook.id} exists")
    if not hook.url.startswith(("https://", "http://")):
        return _fail("INVALID_INPUT", "a webhook's URL is http:// or https://")
    stored = pb.Webhook()
    stored.CopyFrom(hook)
    if current is None:  # from now on: no flood of what happened before it existed
        stored.after_event = events.last_id(txn)
        txn.put(key(b"wc", hook.id), struct.pack(">Q", stored.after_event))
    else:
        stored.after_event = current.after_event
    txn.put(key(b"wh", hook.id), stored.SerializeToString())
    return pb.Result()


def _delete(txn: lmdb.Transaction, c: pb.DeleteWebhook) -> pb.Result:
    if not txn.delete(key(b"wh", c.id)):
        return _fail("NOT_FOUND", f"no webhook {c.id}")
    txn.delete(key(b"wl", c.id))
    txn.delete(key(b"wc", c.id))
    for k, _ in list(scan(txn, key(b"wd", c.id, ""))):
        txn.delete(k)
    return pb.Result()


def _claim(txn: lmdb.Transaction, c: pb.ClaimWebhook) -> pb.Result:
    if webhook(txn, c.id) is None:
        return _fail("NOT_FOUND", f"no webhook {c.id}")
    held = lease(txn, c.id)
    if held is not None and held.replica_id != c.replica_id and held.until_ms > c.at_ms:
        return _fail("CONFLICT", f"{held.replica_id} delivers webhook {c.id}")
    txn.put(key(b"wl", c.id), c.SerializeToString())
    return pb.Result()


def _record(txn: lmdb.Transaction, c: pb.RecordDeliveries) -> pb.Result:
    if webhook(txn, c.id) is None:
        return _fail("NOT_FOUND", f"no webhook {c.id}")
    if c.replica_id:  # a delivering replica: only while it holds the lease
        held = lease(txn, c.id)
        if held is None or held.replica_id != c.replica_id:
            return _fail("CONFLICT", f"{c.replica_id} does not deliver webhook {c.id}")
    for delivery in c.deliveries:
        txn.put(key(b"wd", c.id, f"{delivery.event:020d}"), delivery.SerializeToString())
    for event in c.redeliver:
        pending = pb.Delivery(event=event, status="pending")
        txn.put(key(b"wd", c.id, f"{event:020d}"), pending.SerializeToString())
    if c.settled > settled(txn, c.id):
        txn.put(key(b"wc", c.id), struct.pack(">Q", c.settled))
    log = list(scan(txn, key(b"wd", c.id, "")))
    for k, v in log[: max(0, len(log) - LOG_KEPT)]:
        if pb.Delivery.FromString(v).status != "pending":
            txn.delete(k)
    return pb.Result()


def wants(hook: pb.Webhook, event: pb.Event) -> bool:
    """Whether the webhook delivers this event."""
    return (
        hook.active
        and (not hook.event_types or event.type in hook.event_types)
        and events.matches(event.repository, hook.scope)
    )


def due_events(
    txn: lmdb.Transaction, hook: pb.Webhook, after: int, limit: int = 100
) -> tuple[list[pb.Event], int]:
    """Up to `limit` events after id `after` that the webhook delivers, and the id the
    search got to (every event up to it was looked at)."""
    found, more = events.events(txn, after, limit, hook.scope, frozenset(hook.event_types))
    return found, more or max(after, events.last_id(txn))


# Configuration changes are audited; leases and delivery records are not (too many).
AUDITED = ("put_webhook", "delete_webhook")

APPLY: dict[str, Any] = {
    "put_webhook": _put,
    "delete_webhook": _delete,
    "claim_webhook": _claim,
    "record_deliveries": _record,
}
