"""Docker token authentication from the client's side, for httpx: what docker,
skopeo and containerd do when a registry answers 401 with a Bearer challenge."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Generator
from typing import Any

import httpx

_PARAM = re.compile(r'(\w+)="([^"]*)"')
# The repository of a /v2 path: what comes before the endpoint's own segments.
_REPOSITORY = re.compile(r"^/v2/(.+?)/(?:blobs|manifests|tags|referrers)/")


class TokenAuth(httpx.Auth):
    """On a Bearer challenge, fetch a token for the scope asked with Basic credentials
    (None: anonymous) and retry; keep it per repository for the next requests.
    /api/v0 calls get Basic credentials directly."""

    # Bytes bodies replay on the retry; a streamed body cannot, so its sender asks for
    # a token first (bearer()).
    requires_request_body = False

    def __init__(self, user: str | None, password: str | None, verify: Any = True) -> None:
        self.user = user
        self.password = password
        self.verify = verify
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.path
        if path.startswith("/api/") and self.user is not None:
            pair = f"{self.user}:{self.password or ''}".encode()
            request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            yield request
            return
        key = _key(path)
        with self._lock:
            token = self._tokens.get(key)
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code != 401 or not challenge.lower().startswith("bearer "):
            return
        params = dict(_PARAM.findall(challenge))
        scopes = [params["scope"]] if params.get("scope") else []
        source = request.url.params.get("from")
        if source:  # a cross-repository mount also reads its source
            scopes.append(f"repository:{source}:pull")
        token = self.token(params["realm"], params.get("service", ""), scopes)
        with self._lock:
            self._tokens[key] = token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def bearer(
        self,
        registry_url: str,
        repository: str,
        actions: str = "pull,push",
        service: str = "quorum-registry",
    ) -> dict[str, str]:
        """An Authorization header for one repository, fetched before the request."""
        token = self.token(
            registry_url + "/auth/token", service, [f"repository:{repository}:{actions}"]
        )
        return {"Authorization": f"Bearer {token}"}

    def token(self, realm: str, service: str, scopes: list[str]) -> str:
        query: list[tuple[str, str]] = [("service", service)] + [("scope", s) for s in scopes]
        basic = (self.user, self.password or "") if self.user is not None else None
        r = httpx.get(realm, params=query, auth=basic, verify=self.verify, timeout=30)
        r.raise_for_status()
        return str(r.json()["token"])


def _key(path: str) -> str:
    m = _REPOSITORY.match(path)
    return m.group(1) if m else path


def remember_credentials(urls: list[str], user: str, password: str) -> None:
    """Put credentials for these registries in the auth file that skopeo and podman
    ($REGISTRY_AUTH_FILE) and oras ($DOCKER_CONFIG/config.json) read, as `login` would."""
    path = os.environ.get("REGISTRY_AUTH_FILE")
    if not path:
        return
    with _file_lock:
        try:
            with open(path) as f:
                config = json.load(f)
        except (OSError, ValueError):
            config = {}
        auths = config.setdefault("auths", {})
        for url in urls:
            auths[url.split("://", 1)[1]] = {
                "auth": base64.b64encode(f"{user}:{password}".encode()).decode()
            }
        with open(path + ".tmp", "w") as f:
            json.dump(config, f)
        os.replace(path + ".tmp", path)


_file_lock = threading.Lock()
