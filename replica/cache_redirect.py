"""Sending a user's blob pulls to their cache, and letting caches fetch from us.

A GET of a blob by a user who chose a cache is answered 307 to that cache, with a
one-minute grant (replica/auth/grants.py) bound to the repository and the digest.
The cache checks the grant offline; on a miss it shows the same grant to a replica,
which serves the blob without a user token and never redirects it. A cache the
replica has seen failing is skipped: the replica serves the blob itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import Response

from consensus import caches
from proto import commands_pb2 as pb
from replica.auth import grants
from replica.context import context
from replica.errors import API_HEADERS
from replica.peers import trusting
from replica.registry import Registry

log = logging.getLogger("qreg.replica")
CHECK_EVERY_S = 5.0


class CacheHealth:
    """Which registered caches answered their last /health check, as this replica saw it."""

    def __init__(self, registry: Registry, ca_path: str) -> None:
        self.registry = registry
        self.seen: dict[str, dict[str, object]] = {}  # name -> {"up", "checked_at", "error"}
        # A fresh connection per check: a kept-alive one races the cache's idle timeout
        # (5 s, the same as our interval) and a check on a connection the cache has just
        # closed would mark it down for nothing.
        self.client = httpx.AsyncClient(
            verify=trusting(ca_path), timeout=2.0, limits=httpx.Limits(max_keepalive_connections=0)
        )

    def is_down(self, name: str) -> bool:
        return self.seen.get(name, {}).get("up") is False

    async def run(self) -> None:
        try:
            while True:
                await self.check_all()
                await asyncio.sleep(CHECK_EVERY_S)
        finally:
            await self.client.aclose()

    async def check_all(self) -> None:
        registered = self.registry.state.view(caches.caches)
        await asyncio.gather(*(self._check(c) for c in registered))
        for name in set(self.seen) - {c.name for c in registered}:
            del self.seen[name]

    async def _check(self, cache: pb.PutCache) -> None:
        name, url = cache.name, cache.url
        for _ in range(2):  # one blip is not an outage: down after two failures
            try:
                r = await self.client.get(f"{url}/health")
                up = r.status_code == 200
                error = "" if up else f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                up, error = False, f"{type(e).__name__}: {e}"
            if up:
                break
        if self.seen.get(name, {}).get("up") != up:
            log.info(
                "cache %s is %s",
                name,
                "up" if up else f"down ({error})",
                extra={"fields": {"event": "cache_health", "cache": name, "up": up}},
            )
        self.seen[name] = {"up": up, "checked_at": time.time(), "error": error}


def follows_redirects(user_agent: str, clients: tuple[str, ...]) -> bool:
    """Whether this client is one known to follow a 307 (lower-case substrings)."""
    agent = user_agent.lower()
    return any(client in agent for client in clients)


async def redirect(
    request: Request,
    registry: Registry,
    signer: grants.GrantSigner | None,
    health: CacheHealth | None,
    user: str,
    repository: str,
    digest: str,
) -> Response | None:
    """307 to the user's cache, or None to serve the blob here."""
    if (
        signer is None
        or not user
        or not follows_redirects(
            request.headers.get("user-agent", ""), context(request).redirect_clients
        )
    ):
        return None
    cache = registry.state.view(caches.preference, user)
    if cache is None or (health is not None and health.is_down(cache.name)):
        return None
    await registry.blob_size(repository, digest)  # an unknown blob is our 404, not the cache's
    grant = signer.issue(
        user, repository, digest, cache.name, via=registry.state.view(caches.chain, cache.name)
    )
    location = f"{cache.url}/v2/{repository}/blobs/{digest}?grant={quote(grant)}"
    return Response(
        status_code=307, headers={**API_HEADERS, "Location": location, "Cache-Control": "no-store"}
    )
