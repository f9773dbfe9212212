"""HTTP to a replica with the cluster's own credential, taken from a member's config file.

Operator commands that act for the cluster (join tokens, remove, scrub, backup,
verify, status with --config) go through it: one place builds the URL, the
credential header and the trust (the cluster CA beside the config), and one error
names the URL and the config it came from.
"""

from __future__ import annotations

from typing import Any

import httpx

from cli import configfile
from replica.internal_auth import INTERNAL_HEADER, internal_token


class ClusterUnreachable(Exception):
    """The replica named by the config did not answer (the message says which, and why)."""


class ClusterClient:
    def __init__(self, config_path: str, timeout: float | None = 120.0) -> None:
        self.url, secret = configfile.member(config_path)  # MissingConfig names the path
        self.config_path = config_path
        self.headers = {INTERNAL_HEADER: internal_token(secret) or ""}
        self.verify = configfile.verify(config_path)
        self._client = httpx.Client(
            base_url=self.url, headers=self.headers, verify=self.verify, timeout=timeout
        )

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer, whatever its status; ClusterUnreachable if there is none."""
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ClusterUnreachable(self.unreachable(e)) from None

    def stream(self, method: str, path: str, **kwargs: Any) -> Any:
        """httpx's streaming context manager; its errors surface as httpx.HTTPError."""
        return self._client.stream(method, path, **kwargs)

    def unreachable(self, error: Exception) -> str:
        return f"cannot reach {self.url} (from {self.config_path}): {error}"


def error_of(r: httpx.Response) -> str:
    """An error answer in the registry's format as one line, else its status and text."""
    try:
        return str(r.json()["errors"][0]["message"])
    except (ValueError, KeyError, IndexError, TypeError):
        return f"{r.status_code}: {r.text[:200]}"
