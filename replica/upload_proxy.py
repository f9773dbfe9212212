"""Carrying upload requests to the replica that owns the session.

Behind a round-robin load balancer the PATCHes and PUT of one upload land on
different replicas; the bytes must all reach the replica that opened the
session. Its id names it, so any replica forwards the request there and relays
the answer. A forwarded request is marked, and is never forwarded again.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from replica.errors import BlobUploadUnknown
from replica.peers import PeerError
from replica.registry import Registry

FORWARDED_HEADER = "X-Qreg-Forwarded-Upload"
# The owner checks the client's token again: tokens from any replica are valid on all.
_REQUEST_HEADERS = ("content-type", "content-range", "content-length", "authorization")
_ANSWER_HEADERS = (
    "location",
    "range",
    "docker-upload-uuid",
    "docker-content-digest",
    "content-type",
    "docker-distribution-api-version",
    "retry-after",
    "www-authenticate",
)


class OwnerUnreachable(BlobUploadUnknown):
    """The session's replica is gone or does not answer (with a shared blob store, the
    session goes on here instead: s3sessions.py)."""


async def forward(registry: Registry, request: Request, owner: str) -> Response:
    url = next((r.http_url for r in registry.state.replicas() if r.replica_id == owner), None)
    if request.headers.get(FORWARDED_HEADER):
        raise BlobUploadUnknown("no replica holds this upload session; start the upload again")
    if url is None:
        raise OwnerUnreachable("no replica holds this upload session; start the upload again")
    headers = {k: v for k, v in request.headers.items() if k.lower() in _REQUEST_HEADERS}
    headers[FORWARDED_HEADER] = registry.replica_id
    target = url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        answer = await registry.peers.forward(request.method, target, headers, request.stream())
    except PeerError:
        raise OwnerUnreachable(
            "the replica holding this upload is unreachable; start the upload again"
        ) from None
    return Response(
        answer.content,
        status_code=answer.status_code,
        headers={k: v for k, v in answer.headers.items() if k.lower() in _ANSWER_HEADERS},
    )
