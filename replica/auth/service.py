"""The token service (GET and POST /auth/token) and the check every /v2 request passes.

Docker's token authentication: a request without a valid bearer token gets 401
with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client asks the
realm for a token (Basic credentials, or none for anonymous pulls) and retries.
The token's `access` claim holds the intersection of what was asked and what
the account may do (permissions.py). Passwords and personal access tokens are
both accepted as the password, for CI.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import functools
import hmac
import logging
import time
import urllib.parse
from collections import defaultdict, deque
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from consensus import MetadataState, accounts
from replica.auth import passwords, permissions
from replica.auth.tokens import ACCESS_TTL_S, Claims, InvalidToken, TokenKeys
from replica.errors import (Denied, InvalidInput, NameInvalid, RegistryError,
                            TooManyRequests, Unauthorized)
from replica.names import check_name

log = logging.getLogger("qreg.auth")

# Failed logins per user and per address within the window before 429.
# Failed logins allowed per minute: few per account (guessing one password), more per
# address (many users may share one NAT or proxy).
_FAILURES_ALLOWED = {"user": 5, "addr": 20}
_FAILURE_WINDOW_S = 60.0
_MAX_TRACKED = 50_000
_MAX_FORM = 16 * 1024


@functools.cache
def _dummy_hash() -> str:
    return passwords.hash_password("not a real password")



class FailureLimiter:
    """Slows down guessing: too many failures for one key answer 429 for a while. Keys
    are "user:NAME" and "addr:IP"; memory stays bounded however many names are tried."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, *keys: str) -> int:
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            times = self._failures.get(key)
            if not times:
                continue
            while times and now - times[0] > _FAILURE_WINDOW_S:
                times.popleft()
            if len(times) >= _FAILURES_ALLOWED[key.split(":", 1)[0]]:
                wait = max(wait, _FAILURE_WINDOW_S - (now - times[0]))
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self._failures) > _MAX_TRACKED:
            self._failures = defaultdict(deque, {
                k: v for k, v in self._failures.items() if v and now - v[-1] <= _FAILURE_WINDOW_S})
        for key in keys:
            times = self._failures[key]
            times.append(now)
            if len(times) > 100:
                times.popleft()


class AuthService:
    def __init__(self, state: MetadataState, keys: TokenKeys, enabled: bool) -> None:
        self.state = state
        self.keys = keys
        self.enabled = enabled
        self.limiter = FailureLimiter()
        # This replica's latest authentication failures, for the audit API.
        self.recent_failures: deque[dict[str, Any]] = deque(maxlen=1000)

    def _failed(self, reason: str, address: str, user: str = "") -> None:
        self.recent_failures.append({"at_ms": int(time.time() * 1000), "user": user[:100],
                                     "address": address, "reason": reason})
        log.warning("authentication failed: %s", reason, extra={"fields": {
            "event": "auth_failure", "user": user[:100], "address": address}})

    # ---- who is asking ----------------------------------------------------------------

    async def login(self, username: str, secret: str, address: str) -> tuple[str, str]:
        """(user, personal access token id or "") for valid credentials; raises otherwise."""
        wait = self.limiter.retry_after(f"user:{username[:100]}", f"addr:{address}")
        if wait:
            raise TooManyRequests("too many failed logins; try again later",
                                  headers={"Retry-After": str(wait)})
        account = self.state.view(accounts.account, username)
        token_id = ""
        ok = False
        if account is not None and not account.is_org:
            parsed = passwords.parse_access_token(secret)
            if parsed is not None:
                token_id, token_secret = parsed
                record = self.state.view(accounts.access_token, username, token_id)
                ok = (record is not None
                      and hmac.compare_digest(passwords.secret_hash(token_secret),
                                              record.secret_hash)
                      and (not record.expires_ms or record.expires_ms > time.time() * 1000))
            elif account.password_hash:
                ok = await asyncio.to_thread(passwords.check_password, secret,
                                             account.password_hash)
        else:  # as slow as a wrong password, so timing does not tell which names exist
            await asyncio.to_thread(passwords.check_password, secret, _dummy_hash())
        if not ok:
            self.limiter.failed(f"user:{username[:100]}", f"addr:{address}")
            self._failed("invalid username or password", address, username)
            raise Unauthorized("invalid username or password")
        return username, token_id

    async def basic_user(self, request: Request) -> tuple[str | None, str]:
        """The user named by Basic credentials (None without any), and a PAT id."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None, ""
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            username, _, secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        return await self.login(username, secret, _address(request))

    async def caller(self, request: Request) -> str | None:
        """Who calls the management API: Basic credentials (password or personal
        access token) or a bearer token from /auth/token; None when anonymous."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return self.claims(request).subject or None
        user, _ = await self.basic_user(request)
        return user

    def still_valid(self, claims: Claims) -> bool:
        """A token outlives neither its account, a password change nor its PAT's revocation."""
        if not claims.subject:
            return True
        account = self.state.view(accounts.account, claims.subject)
        if account is None or account.is_org:
            return False
        if claims.issued_at * 1000 < account.password_changed_ms:
            return False
        if claims.token_id:
            record = self.state.view(accounts.access_token, claims.subject, claims.token_id)
            if record is None or (record.expires_ms and record.expires_ms <= time.time() * 1000):
                return False
        return True

    # ---- issuing tokens -----------------------------------------------------------------

    def grant(self, user: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        """The access claim: for each scope asked, what of it the account may do."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, wanted = rest.rpartition(":")
            asked = {a.strip() for a in wanted.split(",") if a.strip()}
            if kind == "repository" and name:
                try:
                    check_name(name)
                except NameInvalid:
                    continue
                allowed = self.state.view(permissions.actions, user, name)
                if "*" in asked:
                    asked = set(permissions.ALL)
                access.append({"type": "repository", "name": name,
                               "actions": sorted(asked & allowed)})
            elif kind == "registry" and name == "catalog" and "*" in asked:
                # Listing is filtered by what the account may pull, at listing time.
                access.append({"type": "registry", "name": "catalog", "actions": ["*"]})
        return access

    async def token_get(self, request: Request) -> Response:
        try:
            self._check_service(request.query_params.get("service"))
            user, token_id = await self.basic_user(request)
            scopes = request.query_params.getlist("scope")
            return self._tokens(user, token_id, scopes,
                                offline=request.query_params.get("offline_token") == "true")
        except RegistryError as e:
            return e.response()

    async def token_post(self, request: Request) -> Response:
        """OAuth2 password and refresh-token grants (what `docker login` uses)."""
        try:
            body = await request.body()
            if len(body) > _MAX_FORM:
                raise Denied("request body too large", status=413)
            # OAuth2 sends application/x-www-form-urlencoded; parse it here rather than
            # pull in python-multipart for Starlette's form().
            try:
                form = dict(urllib.parse.parse_qsl(body.decode(), strict_parsing=bool(body)))
            except (UnicodeDecodeError, ValueError):
                raise InvalidInput("the body is not a form (application/x-www-form-urlencoded)")
            self._check_service(str(form.get("service") or "") or None)
            grant = form.get("grant_type")
            scopes = str(form.get("scope") or "").split()
            if grant == "password":
                user, token_id = await self.login(str(form.get("username") or ""),
                                                  str(form.get("password") or ""),
                                                  _address(request))
                return self._tokens(user, token_id, scopes,
                                    offline=form.get("access_type") == "offline", oauth=True)
            if grant == "refresh_token":
                try:
                    claims = self.keys.verify(str(form.get("refresh_token") or ""), kind="refresh")
                except InvalidToken as e:
                    raise Unauthorized(f"invalid refresh token: {e}") from None
                if not claims.subject or not self.still_valid(claims):
                    raise Unauthorized("the refresh token is no longer valid")
                return self._tokens(claims.subject, claims.token_id, scopes, oauth=True)
            raise InvalidInput("grant_type must be password or refresh_token")
        except RegistryError as e:
            return e.response()

    def _check_service(self, service: str | None) -> None:
        if service is not None and service != self.keys.service:
            raise InvalidInput(f"this token service is for {self.keys.service!r}")

    def _tokens(self, user: str | None, token_id: str, scopes: list[str], offline: bool = False,
                oauth: bool = False) -> Response:
        access = self.grant(user, scopes)
        token = self.keys.issue(user or "", access, token_id)
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        body: dict[str, Any] = {"access_token": token, "expires_in": ACCESS_TTL_S, "issued_at": now}
        if oauth:
            body["scope"] = " ".join(scopes)
        else:
            body["token"] = token
        if offline and user:
            body["refresh_token"] = self.keys.issue(user, [], token_id, kind="refresh")
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    # ---- checking /v2 requests -----------------------------------------------------------

    def claims(self, request: Request, scope: str = "") -> Claims:
        """The valid bearer token of a request; 401 with the challenge otherwise."""
        realm = f"{request.url.scheme}://{request.url.netloc}/auth/token"
        challenge = f'Bearer realm="{realm}",service="{self.keys.service}"'
        if scope:
            challenge += f',scope="{scope}"'
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise Unauthorized(headers={"WWW-Authenticate": challenge})
        try:
            claims = self.keys.verify(header[7:].strip())
        except InvalidToken as e:
            self._failed(f"invalid token: {e}", _address(request))
            raise Unauthorized(f"invalid token: {e}", headers={
                "WWW-Authenticate": challenge + ',error="invalid_token"'}) from None
        if not self.still_valid(claims):
            self._failed("token voided by a password change or revocation", _address(request),
                         claims.subject)
            raise Unauthorized("the token was issued before a password change or revocation",
                               headers={"WWW-Authenticate": challenge + ',error="invalid_token"'})
        return claims

    def require(self, request: Request, repository: str, action: str) -> None:
        """Refuse a request whose token does not grant `action` on `repository`."""
        if not self.enabled:
            return
        needed = "pull,push" if action == "push" else action
        claims = self.claims(request, f"repository:{repository}:{needed}")
        if action not in claims.access.get(f"repository:{repository}", frozenset()):
            realm = f"{request.url.scheme}://{request.url.netloc}/auth/token"
            raise Denied(status=401, headers={"WWW-Authenticate": (
                f'Bearer realm="{realm}",service="{self.keys.service}",'
                f'scope="repository:{repository}:{needed}",error="insufficient_scope"')})
        request.state.claims = claims

    def allows(self, request: Request, repository: str, action: str) -> bool:
        """Whether the request's token (already checked) also grants this (e.g. a mount's source)."""
        if not self.enabled:
            return True
        claims: Claims | None = getattr(request.state, "claims", None)
        return claims is not None and action in claims.access.get(f"repository:{repository}",
                                                                   frozenset())

    def readable(self, request: Request, repositories: list[str]) -> list[str]:
        """The repositories of a listing that the request's account may pull."""
        if not self.enabled:
            return repositories
        claims = self.claims(request, "registry:catalog:*")
        user = claims.subject or None
        return [r for r in repositories
                if "pull" in self.state.view(permissions.actions, user, r)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
