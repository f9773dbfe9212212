"""The token service (GET and POST /auth/token) and the check every /v2 request passes.

Docker's token authentication: a request without a valid bearer token gets 401
with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client asks the
realm for a token (Basic credentials, or none for anonymous pulls) and retries.
The token's `access` claim holds the intersection of what was asked and what
the account may do (permissions.py). Passwords and personal access tokens are
both accepted as the password, for CI.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import hmac
import logging
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from consensus import MetadataState, accounts, directory
from proto import commands_pb2 as pb
from replica.auth import passwords, permissions, sessions
from replica.auth.access import granted
from replica.auth.directory import Directory
from replica.auth.ldap import DirectoryUnavailable
from replica.auth.login_guard import HashingBusy, HashingPool, LoginLimiter
from replica.auth.realm import RealmPolicy
from replica.auth.tokens import ACCESS_TTL_S, Claims, InvalidToken, TokenKeys
from replica.auth.verified_tokens import VerifiedTokens
from replica.bodies import read_limited
from replica.client_certs import CertificateSignIn, name_of, peer_certificate
from replica.errors import (
    Denied,
    InvalidInput,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from replica.names import repository_of_gun

log = logging.getLogger("qreg.auth")

_MAX_FORM = 16 * 1024
# What a missing account's PAT-shaped secret is compared with, so it costs the same.
_DUMMY_SECRET_HASH = passwords.secret_hash("not a real token")


@functools.cache
def _dummy_hash() -> str:
    return passwords.hash_password("not a real password")


API_SCOPE = "registry:api:*"
API_SCOPE_KEY = "registry:api"


@dataclass(frozen=True)
class Caller:
    """A management API caller: None when anonymous. A credential that came from a
    personal access token or a client certificate never changes passwords or sign-in
    settings, makes tokens or deletes accounts (none of it may outlive a revocation)."""

    name: str | None
    via_access_token: bool = False


class AuthService:
    def __init__(
        self,
        state: MetadataState,
        keys: TokenKeys,
        enabled: bool,
        realms: RealmPolicy | None = None,
    ) -> None:
        self.state = state
        self.keys = keys
        self.verified = VerifiedTokens()
        self._enabled = enabled
        self._settings: tuple[int, pb.AuthSettings] | None = None
        self.directory: Directory | None = None  # set once the registry can propose
        self.certificates = CertificateSignIn()
        self.realm = (realms or RealmPolicy()).realm
        self.limiter = LoginLimiter()
        self.hashing = HashingPool()
        _dummy_hash()  # once, at start, not on the event loop of the first failed login
        # This replica's latest authentication failures, for the audit API.
        self.recent_failures: deque[dict[str, Any]] = deque(maxlen=1000)

    def settings(self) -> pb.AuthSettings:
        """The cluster's authentication settings, read again after every change."""
        generation = self.state.accounts_generation
        if self._settings is None or self._settings[0] != generation:
            settings = self.state.view(directory.settings)
            if settings.mode == "none" and self._enabled:
                log.warning(
                    "AUTHENTICATION IS OFF (mode none): anyone who reaches this registry "
                    "may push, pull and delete images; set a mode with `qreg auth mode`"
                )
            self._settings = (generation, settings)
        return self._settings[1]

    @property
    def enabled(self) -> bool:
        """Whether /v2 requests need a token (not in mode none, nor with auth off)."""
        return self._enabled and self.settings().mode != "none"

    def _failed(self, reason: str, address: str, user: str = "") -> None:
        self.recent_failures.append(
            {
                "at_ms": int(time.time() * 1000),
                "user": user[:100],
                "address": address,
                "reason": reason,
            }
        )
        log.warning(
            "authentication failed: %s",
            reason,
            extra={"fields": {"event": "auth_failure", "user": user[:100], "address": address}},
        )

    # ---- who is asking ----------------------------------------------------------------

    async def login(self, username: str, secret: str, address: str) -> tuple[str, str]:
        """(user, personal access token id or "") for valid credentials; raises otherwise.

        The attempt counts against the limits before the hash runs (login_guard.py).
        Every failure costs the same whether the account exists or not: a PAT-shaped
        secret is always one fast hash, anything else always one scrypt.
        """
        keys = self.limiter.keys(username, address)
        wait = await self.limiter.acquire(keys)
        if wait:
            raise TooManyRequests(
                "too many failed logins; try again later", headers={"Retry-After": str(wait)}
            )
        failed = True
        try:
            ok, token_id = await self._check_secret(username, secret)
            failed = not ok
        except (HashingBusy, Unavailable):
            failed = False  # not a guess: this replica, or the directory, was busy or down
            raise
        finally:
            self.limiter.release(keys, failed)
        if not ok:
            self._failed("invalid username or password", address, username)
            raise Unauthorized("invalid username or password")
        return username, token_id

    async def _check_secret(self, username: str, secret: str) -> tuple[bool, str]:
        account = self.state.view(accounts.account, username)
        is_user = account is not None and not account.is_org and not account.deactivated
        parsed = passwords.parse_access_token(secret)
        if parsed is not None:
            token_id, token_secret = parsed
            record = self.state.view(accounts.access_token, username, token_id) if is_user else None
            stored = record.secret_hash if record is not None else _DUMMY_SECRET_HASH
            matches = hmac.compare_digest(passwords.secret_hash(token_secret), stored)
            live = record is not None and (
                not record.expires_ms or record.expires_ms > time.time() * 1000
            )
            return matches and live, token_id
        if self._by_directory(account):
            return await self._directory_login(username, secret), ""
        stored = account.password_hash if account is not None and is_user else ""
        matches = await self.hashing.run(passwords.check_password, secret, stored or _dummy_hash())
        return matches and bool(stored), ""

    def _by_directory(self, account: pb.Account | None) -> bool:
        """In ldap mode passwords are the directory's, but for managed accounts with
        a password here when the settings keep them (the bootstrap admin, robots)."""
        settings = self.settings()
        if settings.mode != "ldap":
            return False
        managed = account is not None and account.source != directory.LDAP
        return not (managed and account is not None and account.password_hash
                    and settings.ldap.keep_managed)  # fmt: skip

    async def _directory_login(self, username: str, secret: str) -> bool:
        if self.directory is None:
            raise Unavailable("this replica has no directory client yet")
        try:
            return await self.directory.login(username, secret)
        except DirectoryUnavailable as e:
            log.warning("a directory login could not be checked: %s", e)
            raise Unavailable(
                f"sign-in is checked by the directory (LDAP), which cannot be reached: {e}",
                headers={"Retry-After": "10"},
            ) from None

    def certificate_user(self, request: Request) -> str | None:
        """The user a trusted client certificate names (client_certs.py), or None
        without one; a certificate that no longer stands is refused, not ignored."""
        cert = peer_certificate(request.scope)
        if cert is None:
            return None
        try:
            return self.certificates.user(self.state.view, self.settings(), cert)
        except Unauthorized as e:
            self._failed(e.message, client_address(request), name_of(cert, "cn"))
            raise

    async def basic_user(self, request: Request) -> tuple[str | None, str]:
        """The user named by Basic credentials (None without any), and a PAT id."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return self.certificate_user(request), ""
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            username, _, secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        return await self.login(username, secret, client_address(request))

    async def caller(self, request: Request) -> Caller:
        """Who calls the management API, and with what kind of credential.

        Basic credentials (password or personal access token) or a bearer token that
        was issued for the management API (scope `registry:api:*`, what `qreg` asks
        for); a token that `docker login` got for pushing and pulling is refused here.
        """
        header = request.headers.get("authorization", "")
        if not header and sessions.COOKIE in request.cookies:
            return self.session_caller(request)
        if header.lower().startswith("bearer "):
            claims = self.claims(request)
            if claims.subject and "*" not in claims.access.get(API_SCOPE_KEY, frozenset()):
                raise Denied(
                    "this token was not issued for the management API: ask "
                    f"/auth/token for scope {API_SCOPE} or use Basic credentials"
                )
            return Caller(claims.subject or None, via_access_token=bool(claims.token_id))
        user, token_id = await self.basic_user(request)
        limited = bool(token_id) or _by_certificate(request, user)
        return Caller(user, via_access_token=limited)

    def session_caller(self, request: Request) -> Caller:
        """A browser signed in to the web UI (sessions.py): its session must be valid,
        and a change must carry the page's CSRF token."""
        claims = sessions.session_claims(self.keys, request)
        if claims is None or not self.still_valid(claims):
            raise Unauthorized("the session has ended: sign in again")
        sessions.check_csrf(self.keys, request)
        return Caller(claims.subject or None, via_access_token=False)

    def still_valid(self, claims: Claims) -> bool:
        """A token outlives neither its account, a password change nor its PAT's revocation."""
        return self._valid_until(claims) > time.time()

    def _valid_until(self, claims: Claims) -> float:
        """Until when (time.time() seconds) the token stands, as the state is now:
        its expiry, or its PAT's if sooner; 0 if voided."""
        if not claims.subject:
            return claims.expires_at
        account = self.state.view(accounts.account, claims.subject)
        if account is None or account.is_org or account.deactivated:
            return 0.0
        if claims.issued_at * 1000 < account.password_changed_ms:
            return 0.0
        if claims.token_id:
            record = self.state.view(accounts.access_token, claims.subject, claims.token_id)
            if record is None:
                return 0.0
            if record.expires_ms:
                return min(claims.expires_at, record.expires_ms / 1000)
        return claims.expires_at

    # ---- issuing tokens -----------------------------------------------------------------

    async def token_get(self, request: Request) -> Response:
        self._check_service(request.query_params.get("service"))
        user, token_id = await self.basic_user(request)
        scopes = request.query_params.getlist("scope")
        # No refresh token for a certificate: it would outlive the certificate's revocation.
        offline = request.query_params.get("offline_token") == "true"
        return self._tokens(
            user, token_id, scopes, offline=offline and not _by_certificate(request, user)
        )

    async def token_post(self, request: Request) -> Response:
        """OAuth2 password and refresh-token grants (what `docker login` uses)."""
        body = await read_limited(request, _MAX_FORM)
        # OAuth2 sends application/x-www-form-urlencoded; parse it here rather than
        # pull in python-multipart for Starlette's form().
        try:
            form = dict(urllib.parse.parse_qsl(body.decode(), strict_parsing=bool(body)))
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput(
                "the body is not a form (application/x-www-form-urlencoded)"
            ) from None
        self._check_service(str(form.get("service") or "") or None)
        grant = form.get("grant_type")
        scopes = str(form.get("scope") or "").split()
        if grant == "password":
            user, token_id = await self.login(
                str(form.get("username") or ""),
                str(form.get("password") or ""),
                client_address(request),
            )
            return self._tokens(
                user, token_id, scopes, offline=form.get("access_type") == "offline", oauth=True
            )
        if grant == "refresh_token":
            try:
                claims = self.keys.verify(str(form.get("refresh_token") or ""), kind="refresh")
            except InvalidToken as e:
                raise Unauthorized(f"invalid refresh token: {e}") from None
            if not claims.subject or not self.still_valid(claims):
                raise Unauthorized("the refresh token is no longer valid")
            return self._tokens(claims.subject, claims.token_id, scopes, oauth=True)
        raise InvalidInput("grant_type must be password or refresh_token")

    def _check_service(self, service: str | None) -> None:
        if service is not None and service != self.keys.service:
            raise InvalidInput(f"this token service is for {self.keys.service!r}")

    def _tokens(
        self,
        user: str | None,
        token_id: str,
        scopes: list[str],
        offline: bool = False,
        oauth: bool = False,
    ) -> Response:
        access = granted(self.state, user, scopes)
        token = self.keys.issue(user or "", access, token_id)
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
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
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        generation = self.state.accounts_generation  # before the checks: see verified_tokens
        cached = self.verified.get(token, generation) if token else None
        if cached is not None:
            return cached
        challenge = f'Bearer realm="{self.realm(request)}",service="{self.keys.service}"'
        if scope:
            challenge += f',scope="{scope}"'
        if not token:
            raise Unauthorized(headers={"WWW-Authenticate": challenge})
        try:
            claims = self.keys.verify(token)
        except InvalidToken as e:
            self._failed(f"invalid token: {e}", client_address(request))
            raise Unauthorized(
                f"invalid token: {e}",
                headers={"WWW-Authenticate": challenge + ',error="invalid_token"'},
            ) from None
        valid_until = self._valid_until(claims)
        if valid_until > time.time():
            self.verified.put(token, claims, valid_until, generation)
        else:
            self._failed(
                "token voided by a password change or revocation",
                client_address(request),
                claims.subject,
            )
            raise Unauthorized(
                "the token was issued before a password change or revocation",
                headers={"WWW-Authenticate": challenge + ',error="invalid_token"'},
            )
        return claims

    def require(self, request: Request, repository: str, action: str) -> None:
        """Refuse a request whose token does not grant `action` on `repository`."""
        self._require(request, repository, f"repository:{repository}", action)

    def require_trust(self, request: Request, gun: str, action: str) -> None:
        """Refuse a trust-service request whose token does not grant `action` on the
        repository the GUN names (`_repository_access`)."""
        plain = repository_of_gun(gun) == gun
        self._require(request, gun, f"repository:{gun}" if plain else f"trust:{gun}", action)

    def _require(self, request: Request, name: str, access_key: str, action: str) -> None:
        if not self.enabled:
            return
        needed = "pull,push" if action == "push" else action
        needed = "*" if action == "delete" and access_key.startswith("trust:") else needed
        claims = self.claims(request, f"repository:{name}:{needed}")
        if action not in claims.access.get(access_key, frozenset()):
            raise Denied(
                status=401,
                headers={
                    "WWW-Authenticate": (
                        f'Bearer realm="{self.realm(request)}",service="{self.keys.service}",'
                        f'scope="repository:{name}:{needed}",error="insufficient_scope"'
                    )
                },
            )
        request.state.claims = claims

    def allows(self, request: Request, repository: str, action: str) -> bool:
        """Whether the request's token (already checked) also grants this (a mount's source)."""
        if not self.enabled:
            return True
        claims: Claims | None = getattr(request.state, "claims", None)
        return claims is not None and action in claims.access.get(
            f"repository:{repository}", frozenset()
        )

    def pullable_by(self, request: Request) -> Callable[[Any, str], bool]:
        """A filter for listings: whether the request's account may pull a repository
        (checked in the listing's own read transaction)."""
        claims = self.claims(request, "registry:catalog:*")
        user = claims.subject or None
        return lambda txn, name: "pull" in permissions.actions(txn, user, name)


def _by_certificate(request: Request, user: str | None) -> bool:
    """Whether `user` was signed in by a client certificate (no credentials sent)."""
    return user is not None and not request.headers.get("authorization")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
