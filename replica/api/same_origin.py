"""Cross-site request forgery protection for the management API (and, later, the UI)."""

from __future__ import annotations

from starlette.requests import Request

from replica.context import context
from replica.errors import Denied, InvalidInput

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def from_own_origin(request: Request) -> bool:
    """Whether the request names no Origin (qreg, curl) or the registry's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = {f"{request.url.scheme}://{request.url.netloc}"}
    public = context(request).public_url
    if public:
        own.add(public.rstrip("/"))
    return origin in own


def refuse_cross_site(request: Request) -> None:
    """Cross-site request forgery: a state-changing request must come from the registry's
    own origin (or from a client that sends none, like qreg and curl), and carry JSON,
    which a cross-site form cannot send without a preflight the registry never answers."""
    if request.method in _SAFE_METHODS:
        return
    if not from_own_origin(request):
        raise Denied(f"cross-origin request from {request.headers['origin'][:100]} refused")
    has_body = (
        request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    )
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if has_body and content_type != "application/json":
        raise InvalidInput("send the body as application/json", status=415)
