"""Where a 401 challenge sends clients for a token (the `realm` of its Bearer header)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request


@dataclass(frozen=True)
class RealmPolicy:
    """Where a 401 challenge sends clients for a token.

    Never simply the request's Host header: a forged Host would make the registry
    send clients, and their passwords, elsewhere. The configured public URL when
    there is one; else the request's host if this replica's certificate names it
    (and the port is ours); else the replica's own URL.
    """

    public_url: str = ""
    fallback_url: str = ""
    known_hosts: frozenset[str] = frozenset()
    port: int = 0

    def realm(self, request: Request) -> str:
        if self.public_url:
            return f"{self.public_url.rstrip('/')}/auth/token"
        url = request.url
        default_port = 443 if url.scheme == "https" else 80
        if url.hostname in self.known_hosts and (url.port or default_port) == self.port:
            return f"{url.scheme}://{url.netloc}/auth/token"
        if self.fallback_url:
            return f"{self.fallback_url.rstrip('/')}/auth/token"
        return f"{url.scheme}://{url.netloc}/auth/token"
