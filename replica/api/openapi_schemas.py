"""The building blocks of the management API's OpenAPI document (openapi.py): the
schemas of its bodies and answers, and helpers that write an operation."""

from __future__ import annotations

from typing import Any

NAME = {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"}
ROLE = {"type": "string", "enum": ["none", "read-only", "read-write", "admin"]}
ACCESS = {"type": "string", "enum": ["read-only", "read-write", "admin"]}
VISIBILITY = {"type": "string", "enum": ["private", "public"]}

SCHEMAS: dict[str, Any] = {
    "Account": {
        "type": "object",
        "required": ["name", "is_org"],
        "properties": {
            "name": NAME,
            "is_org": {"type": "boolean"},
            "global_role": {**ROLE, "description": "shown to the user and to admins"},
        },
    },
    "NewAccount": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": NAME,
            "is_org": {"type": "boolean", "default": False},
            "password": {"type": "string", "minLength": 8, "description": "users only"},
            "global_role": ROLE,
        },
    },
    "AccountChange": {
        "type": "object",
        "properties": {
            "password": {
                "type": "string",
                "minLength": 8,
                "description": "voids every token issued before",
            },
            "global_role": {**ROLE, "description": "admins only"},
        },
    },
    "Repository": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "example": "engineering/barca"},
            "visibility": VISIBILITY,
            "team_access": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "team": {"type": "string", "example": "engineering/core"},
                        "access": ACCESS,
                    },
                },
            },
        },
    },
    "NewToken": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": NAME,
            "expires_in_days": {
                "type": "integer",
                "minimum": 0,
                "maximum": 3650,
                "default": 90,
                "description": "0: never",
            },
        },
    },
    "CreatedToken": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "token": {"type": "string", "description": "shown once; use it as a password"},
        },
    },
    "Cache": {
        "type": "object",
        "properties": {
            "name": NAME,
            "url": {"type": "string"},
            "region": {"type": "string"},
            "upstream": {"type": ["string", "null"]},
            "up": {"type": ["boolean", "null"]},
            "checked_at": {"type": ["number", "null"]},
            "error": {"type": ["string", "null"]},
        },
    },
    "NewCache": {
        "type": "object",
        "required": ["name", "url"],
        "properties": {
            "name": NAME,
            "url": {"type": "string", "example": "https://cache.eu.example:5443"},
            "region": {"type": "string"},
            "upstream": {"type": "string", "description": "another cache; empty: the cluster"},
        },
    },
    "Settings": {"type": "object", "properties": {"cache": {"type": ["string", "null"]}}},
    "Errors": {
        "type": "object",
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "detail": {},
                    },
                },
            }
        },
    },
}

PATTERN = {"type": ["string", "null"], "maxLength": 128, "example": "v*"}
COUNT = {"type": ["integer", "null"], "minimum": 0}
SCHEMAS["Policy"] = {
    "type": "object",
    "properties": {
        "immutable_tags": {"type": "boolean", "description": "covered tags never move or go"},
        "immutable_pattern": {**PATTERN, "description": "the tags it covers (empty: all)"},
        "vulnerabilities": {
            "type": "object",
            "properties": {
                "block_severity": {
                    "type": ["string", "null"],
                    "enum": ["critical", "high", "medium", "low", None],
                    "description": "refuse pulls of images with findings this bad or worse",
                },
                "allowed": {"type": "array", "items": {"type": "string"}},
            },
        },
        "signing": {
            "type": "object",
            "properties": {
                "signed_only": {
                    "type": "boolean",
                    "description": "refuse pulls of tags without a valid content-trust signature",
                },
                "accepted_signers": {
                    "type": "array",
                    "items": {"type": "string", "example": "targets/releases"},
                    "description": "signer roles (or names) that count; empty: any",
                },
            },
        },
        "retention": {
            "type": "object",
            "properties": {
                "keep_newest": COUNT,
                "max_age_days": COUNT,
                "prune_pattern": {**PATTERN, "description": "only these tags are pruned"},
                "keep_pattern": {**PATTERN, "description": "these tags are never pruned"},
            },
        },
    },
}
SCHEMAS["Tag"] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "digest": {"type": "string"},
        "media_type": {"type": "string"},
        "pushed_at_ms": {"type": ["integer", "null"]},
        "pushed_by": {"type": ["string", "null"]},
        "signed": {"type": "boolean", "description": "a valid signature names its digest"},
        "signers": {"type": "array", "items": {"type": "string", "example": "targets/releases"}},
        "stale": {"type": "boolean", "description": "signed, but for another digest"},
        "trust": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "gun": {"type": "string"},
                    "role": {"type": "string"},
                    "digest": {"type": "string"},
                    "valid": {"type": "boolean"},
                    "matches": {"type": "boolean", "description": "still the tag's digest"},
                },
            },
        },
        "other_signatures": {"type": "array", "items": {"type": "object"}},
    },
}
SCHEMAS["CollectionRun"] = {
    "type": "object",
    "properties": {
        "epoch": {"type": "integer"},
        "replica": {"type": "string"},
        "started": {"type": "string", "format": "date-time"},
        "finished": {"type": ["string", "null"], "format": "date-time"},
        "outcome": {"type": "string", "example": "finished"},
        "tags_pruned": {"type": ["integer", "null"]},
        "blobs_marked": {"type": ["integer", "null"]},
        "blobs_removed": {"type": ["integer", "null"]},
        "bytes_removed": {"type": ["integer", "null"]},
        "sweeps": {"type": "array", "items": {"type": "object"}},
    },
}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def as_json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def op(
    summary: str,
    who: str,
    ok: int = 200,
    answer: dict[str, Any] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Allowed to: {who}.",
        "responses": {
            str(ok): {"description": "done", **(as_json(answer) if answer else {})},
            "400": {"description": "invalid input", **as_json(ref("Errors"))},
            "401": {"description": "not signed in", **as_json(ref("Errors"))},
            "403": {"description": "not allowed", **as_json(ref("Errors"))},
            "404": {"description": "not found", **as_json(ref("Errors"))},
            "409": {"description": "already exists", **as_json(ref("Errors"))},
        },
    }
    if body:
        op["requestBody"] = {"required": True, **as_json(ref(body))}
    return op


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, **as_json(schema)}}


def listing(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": item}}}


def named(key: str) -> dict[str, Any]:
    return listing(key, {"type": "object", "properties": {"name": {"type": "string"}}})
