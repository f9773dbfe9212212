"""The OpenAPI paths of events (events.py) and webhooks (webhooks.py)."""

from __future__ import annotations

from typing import Any

from consensus.events import TYPES
from replica.api.openapi_schemas import op, request_body

_TEXT: dict[str, Any] = {"type": "string"}
_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "description": "the cursor: events are in id order"},
        "at_ms": {"type": "integer"},
        "type": {"enum": list(TYPES)},
        "repository": _TEXT,
        "tag": _TEXT,
        "digest": _TEXT,
        "media_type": _TEXT,
        "actor": _TEXT,
        "detail": {"type": "object"},
    },
}
_MIRROR: dict[str, Any] = {
    "kind": {
        "enum": ["webhook", "push_mirror", "pull_mirror", "proxy"],
        "description": "push_mirror: tags pushed to the scope's repository are copied to url "
        "(https://host/ns/name); pull_mirror: url's new or moved tags are copied into the "
        "scope's repository every interval_s; proxy (administrators): the scope's namespace "
        "(ns/) is a read-through cache of the registry at url (https://host[/prefix])",
    },
    "username": {"type": "string", "description": "an account on the other registry"},
    "password": {"type": "string", "description": "its password or token; kept sealed"},
    "tag_pattern": {"type": "string", "description": "mirrors: only tags matching this glob"},
    "interval_s": {
        "type": "integer",
        "minimum": 10,
        "description": "pull_mirror: seconds between polls (300); proxy: seconds before a "
        "cached tag is checked upstream again (3600)",
    },
}
_WEBHOOK: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": _TEXT,
        "scope": {"type": "string", "description": '"", "namespace/" or "namespace/name"'},
        "url": _TEXT,
        "events": {"type": "array", "items": {"enum": list(TYPES)}},
        "active": {"type": "boolean"},
        "allow_private": {"type": "boolean"},
        "secret": {"type": "string", "description": "only in the answer that made it"},
        **{k: v for k, v in _MIRROR.items() if k != "password"},
    },
}
_WEBHOOK_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "scope": _TEXT,
        "url": _TEXT,
        "events": {"type": "array", "items": {"enum": list(TYPES)}},
        "secret": {"type": "string", "minLength": 16},
        "ca_pem": _TEXT,
        "allow_private": {"type": "boolean"},
        "active": {"type": "boolean"},
        **_MIRROR,
    },
}


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": kind}, "description": description}


EVENT_PATHS: dict[str, dict[str, Any]] = {
    "/api/v0/events": {
        "get": op(
            "Events, oldest first: pushes, tag and manifest deletions, signing, scans, refusals",
            "anyone signed in (the repositories they may pull; admins: all)",
            answer={
                "type": "object",
                "properties": {
                    "events": {"type": "array", "items": _EVENT},
                    "next": {"type": ["integer", "null"]},
                },
            },
        )
        | {
            "parameters": [
                _query("repository", '"namespace/name", or "namespace/" for a namespace'),
                _query("type", "an event type (repeatable)"),
                _query("since", "ISO 8601 time or Unix milliseconds"),
                _query("until", "ISO 8601 time or Unix milliseconds"),
                _query("after", "the cursor: `next` of the previous page", "integer"),
                _query("n", "page size (at most 1000)", "integer"),
            ]
        }
    },
    "/api/v0/events/retention": {
        "put": op("How many events are kept, and how long", "admins", answer={"type": "object"})
        | request_body(
            {
                "type": "object",
                "properties": {
                    "max_events": {"type": "integer", "minimum": 0},
                    "days": {"type": "integer", "minimum": 0},
                },
            }
        )
    },
    "/api/v0/webhooks": {
        "get": op("The webhooks you manage", "anyone signed in", answer={"type": "object"}),
        "post": op(
            "Make a webhook, mirror or proxy",
            "admins; namespace owners; repository admins",
            201,
            _WEBHOOK,
        )
        | request_body(_WEBHOOK_BODY),  # fmt: skip
    },
    "/api/v0/webhooks/{id}": {
        "get": op(
            "A webhook, its delivering replica and delivery log", "who manages it", answer=_WEBHOOK
        ),  # fmt: skip
        "patch": op("Change a webhook", "who manages it", answer=_WEBHOOK)
        | request_body(_WEBHOOK_BODY),
        "delete": op("Delete a webhook", "who manages it", 204),
    },
    "/api/v0/webhooks/{id}/test": {
        "post": op(
            "Deliver a ping now, from the replica asked",
            "who manages it",
            answer={"type": "object"},
        )  # fmt: skip
    },
    "/api/v0/webhooks/{id}/deliveries/{event}/redeliver": {
        "post": op("Deliver an event again", "who manages it", 202, {"type": "object"})
    },
}
