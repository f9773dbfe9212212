"""A browser's sign-in: a session cookie holding a session token (tokens.py, eight
hours, voided by a password change like every token), and the CSRF token that every
state-changing request made with it must carry in X-CSRF-Token (the web UI puts it in
each page; another site can neither read the page nor set the header).

The cookie is HttpOnly, SameSite=Strict, Secure over HTTPS, scoped to the replica's
whole origin: the UI's pages and the management API they call.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from replica.auth.tokens import SESSION_TTL_S, Claims, InvalidToken, TokenKeys
from replica.errors import Denied

COOKIE = "qreg_session"
CSRF_HEADER = "x-csrf-token"
_SAFE = ("GET", "HEAD", "OPTIONS")


def csrf_token(keys: TokenKeys, session: str) -> str:
    return keys.mac("csrf\0" + session)[:40]


def session_claims(keys: TokenKeys, request: Request) -> Claims | None:
    """The claims of the request's session cookie, or None (absent, expired, forged)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return keys.verify(token, kind="session")
    except InvalidToken:
        return None


def check_csrf(keys: TokenKeys, request: Request) -> None:
    """Refuse a state-changing request made with the session cookie that lacks the
    session's CSRF token."""
    if request.method in _SAFE:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    expected = csrf_token(keys, request.cookies.get(COOKIE, ""))
    if not hmac.compare_digest(sent, expected):
        raise Denied("this request needs the page's CSRF token (X-CSRF-Token): reload the page")


def set_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_TTL_S,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )


def clear_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, httponly=True, secure=secure, samesite="strict", path="/")
