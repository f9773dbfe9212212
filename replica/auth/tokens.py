"""JSON web tokens of the Docker token spec, signed with the cluster CA's key (ES256).

Every replica holds the CA key, so any replica issues tokens and every replica
verifies tokens that any other issued. An access token lives five minutes; a
refresh token (OAuth2, for `docker login`) ninety days, a browser's session (the web
UI's cookie) eight hours. All name the time they were issued, so a password change
refuses every token from before it.

The header's `kid` is the signing key's libtrust fingerprint, as Docker's token spec
has it: a registry configured with this token service (distribution's `auth.token`
with the cluster CA as its root certificate bundle) finds the key by it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from replica import pki

ISSUER = "quorum-registry"
ACCESS_TTL_S = 300
REFRESH_TTL_S = 90 * 24 * 3600
SESSION_TTL_S = 8 * 3600  # a browser's sign-in (the web UI's cookie)
LEEWAY_S = 5  # for clocks a little apart between replicas


def libtrust_key_id(public_key: Any) -> str:
    """The first 240 bits of the SHA-256 of the key's DER SubjectPublicKeyInfo, in
    base32, in twelve groups of four joined by colons."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


class InvalidToken(Exception):
    """Expired, forged, signed by another key, or meant for another service."""


@dataclass(frozen=True)
class Claims:
    subject: str  # "" when anonymous
    access: dict[str, frozenset[str]]  # "repository:NAME" or "registry:catalog" -> actions
    issued_at: float
    token_id: str  # a personal access token's id, when it was used
    kind: str  # "access", "refresh" or "session"
    expires_at: float = 0.0  # time.time() seconds, leeway included


class TokenKeys:
    def __init__(self, ca_key_pem: bytes, ca_cert_pem: bytes, service: str) -> None:
        self._private = pki.load_ca_key(ca_key_pem)
        self._public = pki.ca_public_key(ca_cert_pem)
        self.key_id = libtrust_key_id(self._public)
        self.service = service
        self._mac_key: bytes | None = None

    def mac(self, text: str) -> str:
        """An HMAC of `text` under a key derived from the CA key: the same on every
        replica that signs tokens (a web form's CSRF token is one)."""
        if self._mac_key is None:
            der = self._private.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self._mac_key = hashlib.sha256(b"qreg mac key\0" + der).digest()
        return hmac.new(self._mac_key, text.encode(), hashlib.sha256).hexdigest()

    def issue(
        self,
        subject: str,
        access: list[dict[str, Any]],
        token_id: str = "",
        kind: str = "access",
        now: float | None = None,
    ) -> str:
        now = time.time() if now is None else now
        ttl = {"access": ACCESS_TTL_S, "session": SESSION_TTL_S}.get(kind, REFRESH_TTL_S)
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": self.service,
            "iat": int(now),
            "nbf": int(now) - 5,
            "exp": int(now) + ttl,
            "jti": secrets.token_hex(8),
            "access": access,
            "typ": kind,
            # iat has whole seconds; a password change within the same second must
            # still void the token, so the exact issue time rides along.
            "iat_ms": int(now * 1000),
        }
        if token_id:
            claims["pat"] = token_id
        return jwt.encode(claims, self._private, algorithm="ES256", headers={"kid": self.key_id})

    def verify(self, token: str, kind: str = "access") -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["ES256"],
                audience=self.service,
                issuer=ISSUER,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError as e:
            raise InvalidToken(str(e)) from None
        if claims.get("typ", "access") != kind:
            raise InvalidToken(f"not an {kind} token")
        access: dict[str, frozenset[str]] = {}
        for entry in claims.get("access") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                access[f"{entry.get('type')}:{entry['name']}"] = frozenset(
                    str(a) for a in entry.get("actions") or []
                )
        issued = claims["iat_ms"] / 1000 if isinstance(claims.get("iat_ms"), int) else claims["iat"]
        return Claims(
            str(claims["sub"]),
            access,
            float(issued),
            str(claims.get("pat", "")),
            kind,
            float(claims["exp"]) + LEEWAY_S,
        )
