"""The OpenAPI (3.0) document of the registry's own API, /v2 (the OCI distribution
spec) and its token service, for the web UI's API console. A repository name may hold
more slashes than one; the console shows the common NAMESPACE/REPOSITORY form."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replica.api.openapi_schemas import SCHEMAS

_ERRORS = {"$ref": "#/components/schemas/Errors"}
_NAME = [
    {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "repository", "in": "path", "required": True, "schema": {"type": "string"}},
]
_PAGE = [
    {"name": "n", "in": "query", "schema": {"type": "integer"}, "description": "page size"},
    {"name": "last", "in": "query", "schema": {"type": "string"}, "description": "after this"},
]


def _param(name: str, where: str = "path", description: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "in": where, "schema": {"type": "string"}}
    found["required"] = where == "path"
    if description:
        found["description"] = description
    return found


def _op(summary: str, ok: str = "200", **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "responses": {
            ok: {"description": "done"},
            "401": {"description": "a token is needed (WWW-Authenticate says where)"},
            "404": {
                "description": "unknown",
                "content": {"application/json": {"schema": _ERRORS}},
            },
        },
        **extra,
    }


_REPO = "/v2/{namespace}/{repository}"
PATHS: dict[str, Any] = {
    "/v2/": {"get": _op("Whether this is a registry, and whether the token is good")},
    "/v2/_catalog": {"get": _op("Repositories the token may list", parameters=_PAGE)},
    _REPO + "/tags/list": {"get": _op("Tags of a repository", parameters=_NAME + _PAGE)},
    _REPO + "/manifests/{reference}": {
        "parameters": [*_NAME, _param("reference", description="a tag or a digest")],
        "get": _op("A manifest (send Accept with the media types you read)"),
        "head": _op("Whether a manifest exists, its digest and size"),
        "put": _op("Push a manifest (its blobs first)", "201"),
        "delete": _op("Delete a manifest by digest, or a tag", "202"),
    },
    _REPO + "/blobs/{digest}": {
        "parameters": [*_NAME, _param("digest")],
        "get": _op("A blob's bytes (Range supported)"),
        "head": _op("Whether a blob exists in the repository"),
        "delete": _op("Unlink a blob from the repository", "202"),
    },
    _REPO + "/blobs/uploads/": {
        "parameters": _NAME,
        "post": _op(
            "Start an upload; ?digest= uploads in one request, ?mount=&from= links "
            "a blob of another repository",
            "202",
            parameters=[
                _param("digest", "query"),
                _param("mount", "query"),
                _param("from", "query"),
            ],
        ),
    },
    _REPO + "/blobs/uploads/{session}": {
        "parameters": [*_NAME, _param("session")],
        "get": _op("Where an upload stands (Range)", "204"),
        "patch": _op("Send a chunk (Content-Range)", "202"),
        "put": _op("Finish an upload: ?digest=", "201", parameters=[_param("digest", "query")]),
        "delete": _op("Cancel an upload", "204"),
    },
    _REPO + "/referrers/{digest}": {
        "parameters": [*_NAME, _param("digest")],
        "get": _op(
            "Manifests that refer to this one (signatures, SBOMs)",
            parameters=[_param("artifactType", "query")],
        ),
    },
    "/auth/token": {
        "get": {
            "summary": "A token for scopes (Docker token spec), with Basic credentials",
            "parameters": [
                _param("service", "query"),
                _param("scope", "query", "as repository:NAMESPACE/REPOSITORY:pull,push"),
            ],
            "security": [{"basic": []}, {}],
            "responses": {"200": {"description": "token, access_token, expires_in"}},
        }
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Quorum Registry: the registry API (/v2)",
            "version": "1.1",
            "description": "The OCI distribution API that docker, podman, skopeo and oras "
            "use. Calls need a bearer token: GET /auth/token with your password for "
            "the scope, then Authorize with it.",
        },
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "schemas": {
                "Errors": SCHEMAS["Errors"],  # one error format for both APIs
            },
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document())
