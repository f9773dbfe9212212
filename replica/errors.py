"""Every OCI error code in one table, one exception class per code, one renderer."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

# code -> (HTTP status, message), from the OCI distribution spec v1.1 and distribution.
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "RANGE_INVALID": (416, "invalid content range"),
    "UNAVAILABLE": (503, "service unavailable"),
    "UNKNOWN": (500, "unknown error"),
    # The management API's own (not OCI) codes.
    "INVALID_INPUT": (400, "invalid input"),
    "NOT_FOUND": (404, "not found"),
    "ALREADY_EXISTS": (409, "already exists"),
    "CONFLICT": (409, "conflicts with work in progress"),
    # Notary's (the trust service, replica/trust/), as its clients expect them.
    "METADATA_NOT_FOUND": (404, "You have requested metadata that does not exist."),
    "INVALID_UPDATE": (400, "Update sent by the client is invalid."),
    "VERSION": (400, "A newer version of metadata is already available."),
    "MALFORMED_JSON": (400, "JSON sent by the client could not be parsed by the server"),
    "MALFORMED_UPLOAD": (400, "The body of your request is malformed."),
    "INVALID_ROLE": (400, "The role you are attempting to operate on is invalid."),
    "NO_FILENAME": (400, "No file/role name provided."),
    "INVALID_GUN": (400, "The server does not support actions on images of this name."),
}


API_HEADERS = {"Docker-Distribution-API-Version": "registry/2.0"}


class RegistryError(Exception):
    """An error answered in the spec's format: {"errors": [{code, message, detail}]}."""

    code = "UNSUPPORTED"

    def __init__(
        self,
        message: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        default_status, default_message = CODES[self.code]
        self.status = status or default_status
        self.message = message or default_message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(self.message)

    def response(self, head_only: bool = False) -> Response:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        body = b"" if head_only else json.dumps({"errors": [entry]}).encode()
        headers = {**API_HEADERS, **self.headers}
        return Response(
            body, status_code=self.status, headers=headers, media_type="application/json"
        )


class BlobUnknown(RegistryError):
    code = "BLOB_UNKNOWN"


class BlobUploadInvalid(RegistryError):
    code = "BLOB_UPLOAD_INVALID"


class BlobUploadUnknown(RegistryError):
    code = "BLOB_UPLOAD_UNKNOWN"


class DigestInvalid(RegistryError):
    code = "DIGEST_INVALID"


class ManifestBlobUnknown(RegistryError):
    code = "MANIFEST_BLOB_UNKNOWN"


class ManifestInvalid(RegistryError):
    code = "MANIFEST_INVALID"


class ManifestUnknown(RegistryError):
    code = "MANIFEST_UNKNOWN"


class NameInvalid(RegistryError):
    code = "NAME_INVALID"


class NameUnknown(RegistryError):
    code = "NAME_UNKNOWN"


class SizeInvalid(RegistryError):
    code = "SIZE_INVALID"


class Unauthorized(RegistryError):
    code = "UNAUTHORIZED"


class Denied(RegistryError):
    code = "DENIED"


class Unsupported(RegistryError):
    code = "UNSUPPORTED"


class TooManyRequests(RegistryError):
    code = "TOOMANYREQUESTS"


class PaginationNumberInvalid(RegistryError):
    code = "PAGINATION_NUMBER_INVALID"


class RangeInvalid(RegistryError):
    code = "RANGE_INVALID"


class Unavailable(RegistryError):
    code = "UNAVAILABLE"


class Unknown(RegistryError):
    code = "UNKNOWN"


class InvalidInput(RegistryError):
    code = "INVALID_INPUT"


class NotFound(RegistryError):
    code = "NOT_FOUND"


class AlreadyExists(RegistryError):
    code = "ALREADY_EXISTS"


class Conflict(RegistryError):
    code = "CONFLICT"


class MetadataNotFound(RegistryError):
    code = "METADATA_NOT_FOUND"


class InvalidUpdate(RegistryError):
    code = "INVALID_UPDATE"


class OldVersion(RegistryError):
    code = "VERSION"


class MalformedJson(RegistryError):
    code = "MALFORMED_JSON"


class MalformedUpload(RegistryError):
    code = "MALFORMED_UPLOAD"


class InvalidRole(RegistryError):
    code = "INVALID_ROLE"


class NoFilename(RegistryError):
    code = "NO_FILENAME"


class InvalidGun(RegistryError):
    code = "INVALID_GUN"


class StorageFull(Unavailable):
    """This replica's disk is full: 507, so clients retry (elsewhere, behind a balancer)."""

    def __init__(self, message: str = "this replica's blob storage is full", **kw: Any) -> None:
        super().__init__(message, status=507, headers={"Retry-After": "10"}, **kw)


def from_code(code: str, message: str) -> RegistryError:
    """The exception for an error code that the state machine returned."""
    cls = next((c for c in RegistryError.__subclasses__() if c.code == code), Unsupported)
    return cls(message)


async def handle(request: Any, exc: Exception) -> Response:
    """Starlette's exception handler for RegistryError: every route raises, this renders."""
    assert isinstance(exc, RegistryError)
    return exc.response(head_only=request.method == "HEAD")
