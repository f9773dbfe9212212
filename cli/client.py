"""A typed client for the management API (/api/v0), signed in through `qreg login`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import httpx

from cli import session as sessions
from cli.output import error_text, fail

Command = Callable[["ManagementClient", argparse.Namespace], int]


def signed_in(name: str, command: Command) -> Callable[[argparse.Namespace], int]:
    """An argparse handler running `command` with a client of the cluster `qreg login`
    signed in to; refusals print as `qreg NAME: CODE: message` and exit 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            with ManagementClient.signed_in() as client:
                return command(client, args)
        except (sessions.NotSignedIn, ApiError, ValueError, OSError) as e:
            return fail(name, str(e))

    return run


class ApiError(Exception):
    """What the cluster refused, in its own words."""


class ManagementClient:
    def __init__(self, session: sessions.Session, timeout: float | None = 30) -> None:
        self.session = session
        self._http = httpx.Client(base_url=session.url, verify=session.verify(), timeout=timeout)
        self._http.headers["Authorization"] = f"Bearer {self.access_token()}"

    @classmethod
    def signed_in(cls, timeout: float | None = 30) -> ManagementClient:
        """A client of the cluster `qreg login` signed in to (None: wait as long as it takes)."""
        return cls(sessions.load(), timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def access_token(self) -> str:
        """A five-minute token for the management API, traded for the session's refresh token."""
        r = httpx.post(
            f"{self.session.url}/auth/token",
            verify=self.session.verify(),
            timeout=30,
            data={
                "grant_type": "refresh_token",
                "service": sessions.SERVICE,
                "scope": "registry:api:*",
                "refresh_token": self.session.refresh_token,
                "client_id": "qreg",
            },
        )
        if r.status_code != 200:
            raise ApiError(f"{error_text(r)} (run qreg login again)")
        return str(r.json()["access_token"])

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One management API call (path under /api/v0); its JSON, or ApiError."""
        r = self._http.request(method, "/api/v0" + path, json=body)
        if r.status_code >= 400:
            raise ApiError(error_text(r))
        return r.json() if r.content else None

    def upload(self, path: str, body: Any, content_type: str) -> Any:
        """PUT a streamed body (an iterator of bytes) under /api/v0; its JSON answer."""
        r = self._http.put(
            "/api/v0" + path, content=body, headers={"Content-Type": content_type}, timeout=None
        )
        if r.status_code >= 400:
            raise ApiError(error_text(r))
        return r.json() if r.content else None

    # ---- accounts ----
    def accounts(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/accounts")["accounts"])

    def add_user(self, name: str, password: str, role: str) -> dict[str, Any]:
        return dict(
            self.call(
                "POST", "/accounts", {"name": name, "password": password, "global_role": role}
            )
        )

    def add_org(self, name: str) -> dict[str, Any]:
        return dict(self.call("POST", "/accounts", {"name": name, "is_org": True}))

    def update_account(self, name: str, **changes: Any) -> dict[str, Any]:
        return dict(self.call("PATCH", f"/accounts/{name}", changes))

    def remove_account(self, name: str) -> None:
        self.call("DELETE", f"/accounts/{name}")

    # ---- teams ----
    def teams(self, org: str) -> list[str]:
        return [t["name"] for t in self.call("GET", f"/accounts/{org}/teams")["teams"]]

    def add_team(self, org: str, team: str) -> None:
        self.call("POST", f"/accounts/{org}/teams", {"name": team})

    def members(self, org: str, team: str) -> list[str]:
        return [
            m["name"] for m in self.call("GET", f"/accounts/{org}/teams/{team}/members")["members"]
        ]

    def set_member(self, org: str, team: str, user: str, member: bool) -> None:
        self.call("PUT" if member else "DELETE", f"/accounts/{org}/teams/{team}/members/{user}")

    # ---- repositories ----
    def repositories(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/repositories")["repositories"])

    def add_repository(self, name: str, visibility: str) -> dict[str, Any]:
        namespace, _, repo = name.partition("/")
        return dict(
            self.call(
                "POST", f"/repositories/{namespace}", {"name": repo, "visibility": visibility}
            )
        )

    def set_visibility(self, name: str, visibility: str) -> dict[str, Any]:
        return dict(self.call("PATCH", f"/repositories/{name}", {"visibility": visibility}))

    def remove_repository(self, name: str) -> None:
        self.call("DELETE", f"/repositories/{name}")

    def grant(self, repository: str, team: str, access: str) -> dict[str, Any]:
        """Team access to a repository of the team's organization ('none' takes it away)."""
        if access == "none":
            return dict(self.call("DELETE", f"/repositories/{repository}/teamAccess/{team}"))
        return dict(
            self.call("PUT", f"/repositories/{repository}/teamAccess/{team}", {"access": access})
        )

    # ---- caches ----
    def caches(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/content_caches")["content_caches"])

    def add_cache(self, name: str, url: str, region: str, upstream: str) -> dict[str, Any]:
        return dict(
            self.call(
                "POST",
                "/content_caches",
                {"name": name, "url": url, "region": region, "upstream": upstream},
            )
        )

    def remove_cache(self, name: str) -> None:
        self.call("DELETE", f"/content_caches/{name}")

    def set_cache(self, user: str, cache: str) -> dict[str, Any]:
        return dict(self.call("PATCH", f"/accounts/{user}/settings", {"cache": cache}))

    def assign_cache(self, cache: str, users: list[str]) -> None:
        self.call("POST", f"/content_caches/{cache}/users", {"users": users})

    # ---- personal access tokens ----
    def tokens(self, user: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/accounts/{user}/tokens")["tokens"])

    def create_token(self, user: str, name: str, days: int) -> dict[str, Any]:
        return dict(
            self.call("POST", f"/accounts/{user}/tokens", {"name": name, "expires_in_days": days})
        )

    def revoke_token(self, user: str, token_id: str) -> None:
        self.call("DELETE", f"/accounts/{user}/tokens/{token_id}")
