"""Password hashes (scrypt, salted, deliberately slow) and personal access tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt at N=2^15, r=8: ~100 ms and 32 MiB per check on these machines, which
# makes guessing expensive; the token service caches nothing of it.
_N, _R, _P = 1 << 15, 8, 1
_MAXMEM = 64 << 20
PAT_PREFIX = "qreg_pat_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, _unb64(digest))


def new_access_token() -> tuple[str, str, str]:
    """A personal access token: (the token shown once, its id, the hash to store)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{PAT_PREFIX}{token_id}_{secret}", token_id, secret_hash(secret)


def secret_hash(secret: str) -> str:
    # The secret is 256 random bits: a fast hash is enough, unlike for passwords.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_access_token(text: str) -> tuple[str, str] | None:
    """(token id, secret) of something shaped like a personal access token."""
    if not text.startswith(PAT_PREFIX):
        return None
    token_id, _, secret = text[len(PAT_PREFIX) :].partition("_")
    if len(token_id) != 12 or not secret:
        return None
    return token_id, secret
