"""The OpenAPI 3.1 document of the management API, served at /api/v0/openapi.json.

Written from the same route tables the app mounts (replica/api/accounts.py and
repositories.py), with the bodies and answers each handler reads and returns.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_NAME = {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"}
_ROLE = {"type": "string", "enum": ["none", "read-only", "read-write", "admin"]}
_ACCESS = {"type": "string", "enum": ["read-only", "read-write", "admin"]}
_VISIBILITY = {"type": "string", "enum": ["private", "public"]}

SCHEMAS: dict[str, Any] = {
    "Account": {
        "type": "object",
        "required": ["name", "is_org"],
        "properties": {
            "name": _NAME,
            "is_org": {"type": "boolean"},
            "global_role": {**_ROLE, "description": "shown to the user and to admins"},
        },
    },
    "NewAccount": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": _NAME,
            "is_org": {"type": "boolean", "default": False},
            "password": {"type": "string", "minLength": 8, "description": "users only"},
            "global_role": _ROLE,
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
            "global_role": {**_ROLE, "description": "admins only"},
        },
    },
    "Repository": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "example": "engineering/barca"},
            "visibility": _VISIBILITY,
            "team_access": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "team": {"type": "string", "example": "engineering/core"},
                        "access": _ACCESS,
                    },
                },
            },
        },
    },
    "NewToken": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": _NAME,
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
            "name": _NAME,
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
            "name": _NAME,
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
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                },
            }
        },
    },
}

_PATTERN = {"type": ["string", "null"], "maxLength": 128, "example": "v*"}
_COUNT = {"type": ["integer", "null"], "minimum": 0}
SCHEMAS["Policy"] = {
    "type": "object",
    "properties": {
        "immutable_tags": {"type": "boolean", "description": "covered tags never move or go"},
        "immutable_pattern": {**_PATTERN, "description": "the tags it covers (empty: all)"},
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
        "retention": {
            "type": "object",
            "properties": {
                "keep_newest": _COUNT,
                "max_age_days": _COUNT,
                "prune_pattern": {**_PATTERN, "description": "only these tags are pruned"},
                "keep_pattern": {**_PATTERN, "description": "these tags are never pruned"},
            },
        },
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


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(
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
            str(ok): {"description": "done", **(_json(answer) if answer else {})},
            "400": {"description": "invalid input", **_json(_ref("Errors"))},
            "401": {"description": "not signed in", **_json(_ref("Errors"))},
            "403": {"description": "not allowed", **_json(_ref("Errors"))},
            "404": {"description": "not found", **_json(_ref("Errors"))},
            "409": {"description": "already exists", **_json(_ref("Errors"))},
        },
    }
    if body:
        op["requestBody"] = {"required": True, **_json(_ref(body))}
    return op


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, **_json(schema)}}


def _list(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": item}}}


def _named(key: str) -> dict[str, Any]:
    return _list(key, {"type": "object", "properties": {"name": {"type": "string"}}})


def _path_params(path: str) -> list[dict[str, Any]]:
    return [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in path.split("/")
        if part.startswith("{")
    ]


PATHS: dict[str, dict[str, Any]] = {
    "/api/v0/accounts": {
        "get": _op(
            "List users and organizations",
            "anyone signed in",
            answer=_list("accounts", _ref("Account")),
        ),
        "post": _op(
            "Create a user or an organization", "admins", 201, _ref("Account"), "NewAccount"
        ),
    },
    "/api/v0/accounts/{name}": {
        "get": _op("One account", "anyone signed in", answer=_ref("Account")),
        "patch": _op(
            "Change a password or a global role",
            "the user (password) and admins",
            answer=_ref("Account"),
            body="AccountChange",
        ),
        "delete": _op("Delete an account", "admins", 204),
    },
    "/api/v0/accounts/{name}/teams": {
        "get": _op("Teams of an organization", "anyone signed in", answer=_named("teams")),
        "post": _op(
            "Create a team",
            "organization owners and admins",
            201,
            {"type": "object", "properties": {"name": _NAME}},
        )
        | _body({"type": "object", "required": ["name"], "properties": {"name": _NAME}}),
    },
    "/api/v0/accounts/{name}/teams/{team}/members": {
        "get": _op("Members of a team", "anyone signed in", answer=_named("members"))
    },
    "/api/v0/accounts/{name}/teams/{team}/members/{user}": {
        "put": _op("Add a member", "organization owners and admins", 204),
        "delete": _op("Remove a member", "organization owners and admins", 204),
    },
    "/api/v0/accounts/{name}/tokens": {
        "get": _op(
            "Personal access tokens, without secrets",
            "the user and admins",
            answer=_list("tokens", {"type": "object"}),
        ),
        "post": _op(
            "Create a personal access token",
            "the user and admins",
            201,
            _ref("CreatedToken"),
            "NewToken",
        ),
    },
    "/api/v0/accounts/{name}/tokens/{token_id}": {
        "delete": _op("Revoke a token", "the user and admins", 204)
    },
    "/api/v0/repositories": {
        "get": _op(
            "Repositories the caller may pull",
            "anyone, anonymous included",
            answer=_list("repositories", _ref("Repository")),
        )
    },
    "/api/v0/repositories/{namespace}": {
        "post": _op(
            "Create a repository in a namespace",
            "the namespace's user, organization owners and admins",
            201,
            _ref("Repository"),
        )
        | _body(
            {
                "type": "object",
                "required": ["name"],
                "properties": {"name": _NAME, "visibility": _VISIBILITY},
            }
        )
    },
    "/api/v0/repositories/{namespace}/{repo}": {
        "get": _op("One repository", "those who may pull it", answer=_ref("Repository")),
        "patch": _op(
            "Make a repository public or private", "repository admins", answer=_ref("Repository")
        )
        | _body({"type": "object", "properties": {"visibility": _VISIBILITY}}),
        "delete": _op("Delete a repository's settings and team access", "repository admins", 204),
    },
    "/api/v0/repositories/{namespace}/{repo}/teamAccess/{team}": {
        "put": _op(
            "Give a team access to a repository",
            "organization owners and admins",
            answer=_ref("Repository"),
        )
        | _body({"type": "object", "required": ["access"], "properties": {"access": _ACCESS}}),
        "delete": _op(
            "Take a team's access away", "organization owners and admins", answer=_ref("Repository")
        ),
    },
    "/api/v0/content_caches": {
        "get": _op(
            "Registered caches, with their health as this replica last saw it",
            "anyone signed in",
            answer=_list("content_caches", _ref("Cache")),
        ),
        "post": _op("Register a cache", "admins", 201, _ref("Cache"), "NewCache"),
    },
    "/api/v0/content_caches/{name}": {
        "delete": _op("Unregister a cache (its users fall back to the cluster)", "admins", 204)
    },
    "/api/v0/content_caches/{name}/users": {
        "post": _op("Make this cache the preference of many users", "admins")
        | _body(
            {
                "type": "object",
                "required": ["users"],
                "properties": {"users": {"type": "array", "items": {"type": "string"}}},
            }
        )
    },
    "/api/v0/accounts/{name}/settings": {
        "get": _op("A user's settings", "the user and admins", answer=_ref("Settings")),
        "patch": _op(
            'Choose the cache the user pulls blobs from ("" for none)',
            "the user and admins",
            answer=_ref("Settings"),
            body="Settings",
        ),
    },
    "/api/v0/repositories/{namespace}/{repo}/tags/{tag}": {
        "delete": _op(
            "Delete a tag (soft delete: its image stays until untagged)", "repository admins", 204
        )
    },
    "/api/v0/repositories/{namespace}/{repo}/policy": {
        "get": _op(
            "A repository's immutability and retention", "its readers", answer=_ref("Policy")
        ),
        "put": _op(
            "Set immutable tags and retention rules",
            "repository admins",
            answer=_ref("Policy"),
            body="Policy",
        ),
    },
    "/api/v0/namespaces/{namespace}/quota": {
        "put": _op("Set a namespace's storage quota (0: none)", "admins")
        | _body({"type": "object", "required": ["bytes"], "properties": {"bytes": _COUNT}})
    },
    "/api/v0/usage": {
        "get": _op(
            "Storage per repository and namespace, quotas, and the cluster's total",
            "admins",
            answer={"type": "object"},
        )
    },
    "/api/v0/gc": {
        "get": _op(
            "Garbage collection: the schedule, who is collecting, the last runs",
            "admins and the cluster's own credential",
            answer=_list("runs", _ref("CollectionRun")),
        )
    },
    "/api/v0/gc/runs": {
        "post": _op(
            "Collect now and wait (a dry run only reports)",
            "admins and the cluster's own credential",
            answer=_ref("CollectionRun"),
        )
        | _body(
            {
                "type": "object",
                "properties": {
                    "dry_run": {"type": "boolean"},
                    "time_limit_s": {"type": "number", "minimum": 0},
                },
            }
        )
    },
    "/api/v0/gc/schedule": {
        "put": _op("Collect on a schedule (cron, seconds first, UTC)", "admins")
        | _body(
            {
                "type": "object",
                "required": ["cron"],
                "properties": {
                    "cron": {"type": "string", "example": "0 0 0 * * *"},
                    "time_limit_s": {"type": "number", "minimum": 0},
                },
            }
        ),
        "delete": _op("No more scheduled collections", "admins"),
    },
    "/api/v0/scan/database": {
        "get": _op(
            "The vulnerability database: version, archives, age (and a warning past a week)",
            "anyone signed in",
            answer={"type": "object"},
        )
    },
    "/api/v0/scan/database/{name}": {
        "put": _op("Import an OSV zip (osv.dev's all.zip of one ecosystem)", "admins", 201)
        | {
            "requestBody": {
                "required": True,
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
        "delete": _op("Drop an archive from the database", "admins", 204),
    },
    "/api/v0/repositories/{namespace}/{repo}/scan": {
        "post": _op("Scan every tag of a repository again", "those who may push to it", 202)
    },
    "/api/v0/repositories/{namespace}/{repo}/tags/{tag}/scan": {
        "get": _op(
            "A tag's vulnerability report (?packages=1 adds the image's packages)",
            "those who may pull it",
            answer={"type": "object"},
        ),
        "post": _op("Scan a tag again now", "those who may push to it", 202),
    },
    "/api/v0/logs": {
        "get": _op(
            "The latest log lines of every replica, filtered; follow with the cursor",
            "admins",
            answer={
                "type": "object",
                "properties": {
                    "lines": {"type": "array", "items": {"type": "object"}},
                    "cursor": {"type": "string", "example": "replica-0:120,replica-1:98"},
                    "errors": {"type": "object"},
                },
            },
        )
        | {
            "parameters": [
                {"name": "after", "in": "query", "schema": {"type": "string"}},
                {"name": "level", "in": "query", "schema": {"type": "string"}},
                {"name": "q", "in": "query", "schema": {"type": "string"}},
                {"name": "replica", "in": "query", "schema": {"type": "string"}},
            ]
        }
    },
    "/api/v0/audit": {
        "get": _op(
            "Account and permission changes, and failed logins on every replica reachable",
            "admins",
            answer={
                "type": "object",
                "properties": {
                    "changes": {"type": "array", "items": {"type": "object"}},
                    "failed_logins": {"type": "array", "items": {"type": "object"}},
                },
            },
        )
        | {
            "parameters": [
                {
                    "name": "after",
                    "in": "query",
                    "schema": {"type": "integer"},
                    "description": "only changes after this Raft index",
                }
            ]
        }
    },
}


def document() -> dict[str, Any]:
    paths = {}
    for path, operations in PATHS.items():
        paths[path] = (
            {"parameters": _path_params(path), **operations} if "{" in path else operations
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Quorum Registry management API",
            "version": "0",
            "description": "Accounts, organizations, teams, repositories and their "
            "policies, personal access tokens, garbage collection, usage and the audit "
            "log. Every change is replicated through Raft and recorded with who made it.",
        },
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "a password or a personal access token",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "an access token from /auth/token",
                },
            },
        },
    }


def as_openapi_30(node: Any) -> Any:
    """The document in OpenAPI 3.0 terms, for viewers that read no 3.1 (the bundled
    Swagger UI): a type list with "null" becomes `nullable`."""
    if isinstance(node, list):
        return [as_openapi_30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_openapi_30(v) for k, v in node.items()}
    kind = out.get("type")
    if isinstance(kind, list):
        rest = [t for t in kind if t != "null"]
        out["type"] = rest[0] if len(rest) == 1 else rest
        if "null" in kind:
            out["nullable"] = True
    if out.get("openapi") == "3.1.0":
        out["openapi"] = "3.0.3"
    return out


async def openapi(request: Request) -> Response:
    """The document (3.1); ?version=3.0 gives it in 3.0 terms."""
    if request.query_params.get("version") == "3.0":
        return JSONResponse(as_openapi_30(document()))
    return JSONResponse(document())
