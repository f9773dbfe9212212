"""Cache grants: what a replica's redirect hands a client so a cache serves one blob.

A grant is a JWT signed with the cluster CA's key (ES256), bound to one repository,
one digest and one cache, valid for a minute. It names the caches that may honour
it: the user's cache and the caches upstream of it (`via`), which see the same
grant when a miss travels up the chain. Any other cache refuses it. A cache checks it
offline with the CA certificate, so it needs no account and no call to the cluster to
decide; it then shows the same grant to the cluster (or to its upstream cache) to fetch
a miss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from replica import pki

AUDIENCE = "qreg-cache"
TTL_S = 60
HEADER = "X-Qreg-Grant"


# A grant for this repository and digest lets the cluster read a cache's log lines:
# no repository can be named so (names start with a letter or digit).
LOGS = "_logs"
LOGS_GRANT_HEADER = "X-Qreg-Grant"


class InvalidGrant(Exception):
    """Expired, forged, or for another repository, digest or cache."""


@dataclass(frozen=True)
class Grant:
    user: str
    repository: str
    digest: str
    cache: str


class GrantSigner:
    def __init__(self, ca_key_pem: bytes) -> None:
        self._key = pki.load_ca_key(ca_key_pem)

    def issue(
        self,
        user: str,
        repository: str,
        digest: str,
        cache: str,
        now: float | None = None,
        via: list[str] | None = None,
    ) -> str:
        now = time.time() if now is None else now
        claims = {
            "aud": AUDIENCE,
            "sub": user,
            "repo": repository,
            "digest": digest,
            "cache": cache,
            "via": list(via or [cache]),
            "iat": int(now),
            "exp": int(now) + TTL_S,
        }
        return jwt.encode(claims, self._key, algorithm="ES256")


class GrantVerifier:
    def __init__(self, ca_cert_pem: bytes) -> None:
        self._public = pki.ca_public_key(ca_cert_pem)

    def verify(self, grant: str, repository: str, digest: str, cache: str | None = None) -> Grant:
        """The grant's claims, if it is genuine, current and for this blob (and, when
        a cache asks, for that cache or a cache downstream of it)."""
        try:
            claims = jwt.decode(
                grant,
                self._public,
                algorithms=["ES256"],
                audience=AUDIENCE,
                leeway=5,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.PyJWTError as e:
            raise InvalidGrant(str(e)) from None
        if claims.get("repo") != repository or claims.get("digest") != digest:
            raise InvalidGrant("the grant is for another blob")
        via = claims.get("via")
        honoured_by = via if isinstance(via, list) else [claims.get("cache")]
        if cache is not None and cache not in honoured_by:
            raise InvalidGrant(f"the grant is for cache {claims.get('cache')!r}, not this one")
        return Grant(str(claims["sub"]), repository, digest, str(claims.get("cache", "")))
