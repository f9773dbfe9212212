"""Join tokens: what lets a new host join the cluster (and learn its secret).

    qreg-join-v2.<issued ms>.<expires ms>.<hmac-sha256 of both with the cluster secret>[.<CA pin>]

Any holder of the cluster secret mints them offline (`qreg join-token`); they
expire (an hour by default) and can all be revoked at once: the cluster keeps a
replicated "valid after" time (`qreg join-token --revoke`), so a token that
leaked into a log stops working everywhere. The optional last part is the sha256
of the cluster CA, which the joiner checks before it trusts the CA it is handed
(as kubeadm's discovery hash does).
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "qreg-join-v2"
DEFAULT_TTL_S = 3600


class InvalidJoinToken(ValueError):
    """Forged, expired, revoked or malformed."""


def _proof(secret: str, issued_ms: int, expires_ms: int) -> str:
    message = f"{PREFIX}.{issued_ms}.{expires_ms}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def issue(secret: str, now_ms: int, ttl_s: int = DEFAULT_TTL_S, ca_fingerprint: str = "") -> str:
    expires_ms = now_ms + ttl_s * 1000
    token = f"{PREFIX}.{now_ms}.{expires_ms}.{_proof(secret, now_ms, expires_ms)}"
    return token + (f".{ca_fingerprint}" if ca_fingerprint else "")


def ca_pin(token: str) -> str:
    parts = token.split(".")
    return parts[4] if len(parts) == 5 else ""


def check(secret: str, token: str, now_ms: int, valid_after_ms: int) -> None:
    """Raise InvalidJoinToken unless the token is genuine, current and not revoked."""
    parts = token.split(".")
    if len(parts) not in (4, 5) or parts[0] != PREFIX or not all(p.isdigit() for p in parts[1:3]):
        raise InvalidJoinToken("malformed join token (qreg join-token makes one)")
    issued_ms, expires_ms = int(parts[1]), int(parts[2])
    if not hmac.compare_digest(_proof(secret, issued_ms, expires_ms), parts[3]):
        raise InvalidJoinToken("invalid join token")
    if expires_ms <= now_ms:
        raise InvalidJoinToken("this join token expired: run qreg join-token again on a member")
    if issued_ms < valid_after_ms:
        raise InvalidJoinToken("this join token was revoked: run qreg join-token again")
