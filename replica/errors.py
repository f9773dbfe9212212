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
    # The management API's own (not OCI) codes.
    "INVALID_INPUT": (400, "invalid input"),
    "NOT_FOUND": (404, "not found"),
    "ALREADY_EXISTS": (409, "already exists"),
}


class RegistryError(Exception):
    code = "UNSUPPORTED"

    def __init__(self, message: str | None = None, detail: Any = None,
                 headers: dict[str, str] | None = None, status: int | None = None) -> None:
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
        headers = {"Docker-Distribution-API-Version": "registry/2.0", **self.headers}
        return Response(body, status_code=self.status, headers=headers,
                        media_type="application/json")


def _error_class(code: str) -> type[RegistryError]:
    name = "".join(part.capitalize() for part in code.split("_"))
    return type(name, (RegistryError,), {"code": code})


BlobUnknown = _error_class("BLOB_UNKNOWN")
BlobUploadInvalid = _error_class("BLOB_UPLOAD_INVALID")
BlobUploadUnknown = _error_class("BLOB_UPLOAD_UNKNOWN")
DigestInvalid = _error_class("DIGEST_INVALID")
ManifestBlobUnknown = _error_class("MANIFEST_BLOB_UNKNOWN")
ManifestInvalid = _error_class("MANIFEST_INVALID")
ManifestUnknown = _error_class("MANIFEST_UNKNOWN")
NameInvalid = _error_class("NAME_INVALID")
NameUnknown = _error_class("NAME_UNKNOWN")
SizeInvalid = _error_class("SIZE_INVALID")
Unauthorized = _error_class("UNAUTHORIZED")
Denied = _error_class("DENIED")
Unsupported = _error_class("UNSUPPORTED")
TooManyRequests = _error_class("TOOMANYREQUESTS")
PaginationNumberInvalid = _error_class("PAGINATION_NUMBER_INVALID")
RangeInvalid = _error_class("RANGE_INVALID")
Unavailable = _error_class("UNAVAILABLE")
InvalidInput = _error_class("INVALID_INPUT")
NotFound = _error_class("NOT_FOUND")
AlreadyExists = _error_class("ALREADY_EXISTS")


class StorageFull(Unavailable):
    """This replica's disk is full: 507, so clients retry (elsewhere, behind a balancer)."""

    def __init__(self, message: str = "this replica's blob storage is full", **kw: Any) -> None:
        super().__init__(message, status=507, headers={"Retry-After": "10"}, **kw)


def from_code(code: str, message: str) -> RegistryError:
    """The exception for an error code that the state machine returned."""
    cls = next((c for c in RegistryError.__subclasses__() if c.code == code), Unsupported)
    return cls(message)
