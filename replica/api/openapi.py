"""The OpenAPI 3.1 document of the management API, served at /api/v0/openapi.json.

Written from the same route tables the app mounts (the test of this module checks
them), with the bodies and answers each handler reads and returns; the schemas and
the helpers that write an operation are in openapi_schemas.py.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replica.api.openapi_auth import AUTH_PATHS
from replica.api.openapi_events import EVENT_PATHS
from replica.api.openapi_schemas import (
    ACCESS,
    COUNT,
    NAME,
    SCHEMAS,
    VISIBILITY,
    listing,
    named,
    op,
    ref,
    request_body,
)


def _path_params(path: str) -> list[dict[str, Any]]:
    return [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in path.split("/")
        if part.startswith("{")
    ]


PATHS: dict[str, dict[str, Any]] = {
    "/api/v0/accounts": {
        "get": op(
            "List users and organizations",
            "anyone signed in",
            answer=listing("accounts", ref("Account")),
        ),
        "post": op("Create a user or an organization", "admins", 201, ref("Account"), "NewAccount"),
    },
    "/api/v0/accounts/{name}": {
        "get": op("One account", "anyone signed in", answer=ref("Account")),
        "patch": op(
            "Change a password or a global role",
            "the user (password) and admins",
            answer=ref("Account"),
            body="AccountChange",
        ),
        "delete": op("Delete an account", "admins", 204),
    },
    "/api/v0/accounts/{name}/teams": {
        "get": op("Teams of an organization", "anyone signed in", answer=named("teams")),
        "post": op(
            "Create a team",
            "organization owners and admins",
            201,
            {"type": "object", "properties": {"name": NAME}},
        )
        | request_body({"type": "object", "required": ["name"], "properties": {"name": NAME}}),
    },
    "/api/v0/accounts/{name}/teams/{team}/members": {
        "get": op("Members of a team", "anyone signed in", answer=named("members"))
    },
    "/api/v0/accounts/{name}/teams/{team}/members/{user}": {
        "put": op("Add a member", "organization owners and admins", 204),
        "delete": op("Remove a member", "organization owners and admins", 204),
    },
    "/api/v0/accounts/{name}/tokens": {
        "get": op(
            "Personal access tokens, without secrets",
            "the user and admins",
            answer=listing("tokens", {"type": "object"}),
        ),
        "post": op(
            "Create a personal access token",
            "the user and admins",
            201,
            ref("CreatedToken"),
            "NewToken",
        ),
    },
    "/api/v0/accounts/{name}/tokens/{token_id}": {
        "delete": op("Revoke a token", "the user and admins", 204)
    },
    "/api/v0/repositories": {
        "get": op(
            "Repositories the caller may pull",
            "anyone, anonymous included",
            answer=listing("repositories", ref("Repository")),
        )
    },
    "/api/v0/repositories/{namespace}": {
        "post": op(
            "Create a repository in a namespace",
            "the namespace's user, organization owners and admins",
            201,
            ref("Repository"),
        )
        | request_body(
            {
                "type": "object",
                "required": ["name"],
                "properties": {"name": NAME, "visibility": VISIBILITY},
            }
        )
    },
    "/api/v0/repositories/{namespace}/{repo}": {
        "get": op("One repository", "those who may pull it", answer=ref("Repository")),
        "patch": op(
            "Make a repository public or private", "repository admins", answer=ref("Repository")
        )
        | request_body({"type": "object", "properties": {"visibility": VISIBILITY}}),
        "delete": op("Delete a repository's settings and team access", "repository admins", 204),
    },
    "/api/v0/repositories/{namespace}/{repo}/teamAccess/{team}": {
        "put": op(
            "Give a team access to a repository",
            "organization owners and admins",
            answer=ref("Repository"),
        )
        | request_body(
            {"type": "object", "required": ["access"], "properties": {"access": ACCESS}}
        ),
        "delete": op(
            "Take a team's access away", "organization owners and admins", answer=ref("Repository")
        ),
    },
    "/api/v0/content_caches": {
        "get": op(
            "Registered caches, with their health as this replica last saw it",
            "anyone signed in",
            answer=listing("content_caches", ref("Cache")),
        ),
        "post": op("Register a cache", "admins", 201, ref("Cache"), "NewCache"),
    },
    "/api/v0/content_caches/{name}": {
        "delete": op("Unregister a cache (its users fall back to the cluster)", "admins", 204)
    },
    "/api/v0/content_caches/{name}/users": {
        "post": op("Make this cache the preference of many users", "admins")
        | request_body(
            {
                "type": "object",
                "required": ["users"],
                "properties": {"users": {"type": "array", "items": {"type": "string"}}},
            }
        )
    },
    "/api/v0/accounts/{name}/settings": {
        "get": op("A user's settings", "the user and admins", answer=ref("Settings")),
        "patch": op(
            'Choose the cache the user pulls blobs from ("" for none)',
            "the user and admins",
            answer=ref("Settings"),
            body="Settings",
        ),
    },
    "/api/v0/repositories/{namespace}/{repo}/tags": {
        "get": op(
            "A page of tags (?n=100&last=TAG): digest, who pushed it when, and whether "
            "content trust signs it",
            "its readers",
            answer={
                "type": "object",
                "properties": {
                    "tags": {"type": "array", "items": ref("Tag")},
                    "next": {"type": ["string", "null"], "description": "last= of the next page"},
                },
            },
        )
    },
    "/api/v0/repositories/{namespace}/{repo}/tags/{tag}": {
        "get": op(
            "One tag with every signature: content trust's per name and role, and those "
            "pushed as OCI referrers (listed, not verified)",
            "its readers",
            answer=ref("Tag"),
        ),
        "delete": op(
            "Delete a tag (soft delete: its image stays until untagged)", "repository admins", 204
        ),
    },
    "/api/v0/repositories/{namespace}/{repo}/policy": {
        "get": op(
            "A repository's immutability, retention, vulnerability and signing rules",
            "its readers",
            answer=ref("Policy"),
        ),
        "put": op(
            "Set immutable tags, retention, vulnerability and signing rules",
            "repository admins",
            answer=ref("Policy"),
            body="Policy",
        ),
    },
    "/api/v0/namespaces/{namespace}/quota": {
        "put": op("Set a namespace's storage quota (0: none)", "admins")
        | request_body({"type": "object", "required": ["bytes"], "properties": {"bytes": COUNT}})
    },
    "/api/v0/usage": {
        "get": op(
            "Storage per repository and namespace, quotas, and the cluster's total",
            "admins",
            answer={"type": "object"},
        )
    },
    "/api/v0/gc": {
        "get": op(
            "Garbage collection: the schedule, who is collecting, the last runs",
            "admins and the cluster's own credential",
            answer=listing("runs", ref("CollectionRun")),
        )
    },
    "/api/v0/gc/runs": {
        "post": op(
            "Collect now and wait (a dry run only reports)",
            "admins and the cluster's own credential",
            answer=ref("CollectionRun"),
        )
        | request_body(
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
        "put": op("Collect on a schedule (cron, seconds first, UTC)", "admins")
        | request_body(
            {
                "type": "object",
                "required": ["cron"],
                "properties": {
                    "cron": {"type": "string", "example": "0 0 0 * * *"},
                    "time_limit_s": {"type": "number", "minimum": 0},
                },
            }
        ),
        "delete": op("No more scheduled collections", "admins"),
    },
    "/api/v0/scan/database": {
        "get": op(
            "The vulnerability database: version, archives, age (and a warning past a week)",
            "anyone signed in",
            answer={"type": "object"},
        )
    },
    "/api/v0/scan/database/{name}": {
        "put": op("Import an OSV zip (osv.dev's all.zip of one ecosystem)", "admins", 201)
        | {
            "requestBody": {
                "required": True,
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
        "delete": op("Drop an archive from the database", "admins", 204),
    },
    "/api/v0/repositories/{namespace}/{repo}/scan": {
        "post": op("Scan every tag of a repository again", "those who may push to it", 202)
    },
    "/api/v0/repositories/{namespace}/{repo}/tags/{tag}/scan": {
        "get": op(
            "A tag's vulnerability report (?packages=1 adds the image's packages)",
            "those who may pull it",
            answer={"type": "object"},
        ),
        "post": op("Scan a tag again now", "those who may push to it", 202),
    },
    "/api/v0/logs": {
        "get": op(
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
        "get": op(
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
    for path, operations in {**PATHS, **AUTH_PATHS, **EVENT_PATHS}.items():
        paths[path] = (
            {"parameters": _path_params(path), **operations} if "{" in path else operations
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Quorum Registry management API",
            "version": "0",
            "description": "Accounts, organizations, teams, repositories and their "
            "policies, personal access tokens, sign-in (LDAP, client certificates), garbage "
            "collection, usage and the audit log. Every change is replicated through Raft "
            "and recorded with who made it.",
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
