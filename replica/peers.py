"""Talking to the other replicas over their HTTP port: the read index (blobs go over gRPC).

Requests carry a token derived from the cluster secret; a replica refuses
internal requests without it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.requests import Request

from replica.context import context
from replica.errors import Denied
from replica.internal_auth import INTERNAL_HEADER, internal_token, is_internal
from replica.pki import TlsFiles


def require_internal(request: Request) -> None:
    """Refuse a request that lacks the cluster's credentials (DENIED)."""
    if not is_internal(context(request).internal_token, request.headers.get(INTERNAL_HEADER)):
        raise Denied("cluster credentials required")


class PeerError(Exception):
    """A peer could not answer."""


def trusting(ca_path: str | None) -> ssl.SSLContext:
    """A client TLS context that trusts the cluster CA as well as the system's roots
    (a replica may present a certificate of its own to clients: tls.public_cert)."""
    context = ssl.create_default_context()
    if ca_path:
        context.load_verify_locations(ca_path)
    return context


class PeerClient:
    def __init__(self, secret: str | None, tls: TlsFiles | None = None) -> None:
        self._headers = {INTERNAL_HEADER: internal_token(secret) or ""}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=1.0),
            headers=self._headers,
            verify=trusting(tls.ca if tls else None),
            limits=httpx.Limits(max_keepalive_connections=32),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def read_index(self, url: str) -> int:
        try:
            r = await self._client.get(f"{url}/_internal/read-index", timeout=1.0)
        except httpx.HTTPError as e:
            raise PeerError(f"{url}: {e}") from None
        if r.status_code != 200:
            raise PeerError(f"{url}: read-index answered {r.status_code}")
        return int(r.json()["index"])

    async def health(self, url: str) -> dict[str, Any]:
        """A peer's /health document (whatever its status code)."""
        try:
            r = await self._client.get(f"{url}/health", timeout=1.5)
            return dict(r.json())
        except (httpx.HTTPError, ValueError) as e:
            raise PeerError(f"{url}: {type(e).__name__}: {e}") from None

    async def audit_events(self, url: str) -> dict[str, list[dict[str, Any]]]:
        """A peer's recent authentication failures and refused pulls (kept in memory
        on each replica: neither is worth a Raft write)."""
        try:
            r = await self._client.get(f"{url}/_internal/failed-logins", timeout=2.0)
            r.raise_for_status()
            body = r.json()
            return {
                "failed_logins": list(body["failed_logins"]),
                "refused_pulls": list(body.get("refused_pulls") or []),
            }
        except (httpx.HTTPError, ValueError, KeyError) as e:
            raise PeerError(f"{url}: {type(e).__name__}: {e}") from None

    async def logs(self, url: str, after: int) -> list[dict[str, Any]]:
        """A peer's recent log lines numbered above `after`."""
        try:
            r = await self._client.get(
                f"{url}/_internal/logs", params={"after": after}, timeout=2.0
            )
            r.raise_for_status()
            return list(r.json()["lines"])
        except (httpx.HTTPError, ValueError, KeyError) as e:
            raise PeerError(f"{url}: {type(e).__name__}: {e}") from None

    async def state_digests(self, url: str) -> dict[int, str]:
        """A peer's latest (applied index -> state digest)."""
        try:
            r = await self._client.get(f"{url}/_internal/state-digests", timeout=2.0)
            r.raise_for_status()
            return {int(i): str(d) for i, d in r.json()["recent"]}
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            raise PeerError(f"{url}: {type(e).__name__}: {e}") from None

    async def forward(
        self, method: str, url: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> httpx.Response:
        """Carry a client's request to another replica, streaming its body."""
        try:
            return await self._client.request(
                method,
                url,
                headers=headers,
                content=body,
                timeout=httpx.Timeout(600.0, connect=2.0),
            )
        except httpx.HTTPError as e:
            raise PeerError(f"{url}: {e}") from None
