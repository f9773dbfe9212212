"""Another registry, as a client of its OCI distribution API: Docker token
authentication (a 401's Bearer challenge answered at its realm with the stored
credentials) or Basic, blob and manifest pushes, manifest and tag reads.

Blocking (httpx); callers run it in worker threads. Every host it is sent to (the
registry, a token realm, an upload Location) must pass the webhook target rule: no
loopback, private or other internal address unless an administrator allowed it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import ssl
import urllib.parse
from collections.abc import Iterator

import httpx

from proto import commands_pb2 as pb
from replica.manifests import MAX_MANIFEST_BYTES
from replica.webhooks.targets import TargetRefused, resolve

_PARAM = re.compile(r'(\w+)="([^"]*)"')
TIMEOUT_S = 60.0
MAX_TAGS = 10_000
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class RemoteError(Exception):
    """What the other registry answered (or why it could not be reached)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def split_target(url: str) -> tuple[str, str]:
    """'https://host[:port]/ns/repo' -> ('https://host[:port]', 'ns/repo')."""
    parts = urllib.parse.urlsplit(url)
    repository = parts.path.strip("/")
    if parts.scheme not in ("http", "https") or not parts.netloc or not repository:
        raise RemoteError("a mirror target is https://HOST[:PORT]/NAMESPACE/REPOSITORY")
    return f"{parts.scheme}://{parts.netloc}", repository


def remote_of(hook: pb.Webhook, password: str) -> tuple[RemoteRegistry, str]:
    """A mirror's other registry, and the repository there."""
    base, repository = split_target(hook.url)
    return RemoteRegistry.of(hook, password, base), repository


class RemoteRegistry:
    @classmethod
    def of(cls, hook: pb.Webhook, password: str, base_url: str) -> RemoteRegistry:
        """The registry at `base_url` as a mirror's or proxy's settings reach it."""
        return cls(base_url, hook.username, password, hook.ca_pem, hook.allow_private)

    def __init__(
        self,
        base_url: str,
        username: str = "",
        password: str = "",
        ca_pem: str = "",
        allow_private: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = (username, password) if username else None
        self._allow_private = allow_private
        verify: ssl.SSLContext | bool = True
        if ca_pem:
            verify = ssl.create_default_context(cadata=ca_pem)
        self._http = httpx.Client(verify=verify, timeout=TIMEOUT_S, follow_redirects=False)
        self._tokens: dict[str, str] = {}
        self._basic = False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- requests, with the other registry's authentication ---------------------------

    def _allowed(self, url: str) -> None:
        try:
            resolve(url, self._allow_private)
        except TargetRefused as e:
            raise RemoteError(f"refused: {e}") from None

    def request(
        self,
        method: str,
        url: str,
        scope: str,
        headers: dict[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request; on a 401, the challenge answered (a token for `scope`, or Basic)
        and the request sent once more. A streamed body cannot be sent twice: its sender
        makes an unstreamed request of the same scope first."""
        full = url if url.startswith(("http://", "https://")) else self.base_url + url
        self._allowed(full)
        for attempt in (1, 2):
            sent = dict(headers or {})
            if scope in self._tokens:
                sent["Authorization"] = f"Bearer {self._tokens[scope]}"
            elif self._basic and self._credentials:
                sent["Authorization"] = _basic(*self._credentials)
            try:
                request = self._http.build_request(method, full, headers=sent, content=content)
                response = self._http.send(request, stream=stream)
            except httpx.HTTPError as e:
                raise RemoteError(f"{self.base_url}: {type(e).__name__}: {e}") from None
            if response.status_code != 401 or attempt == 2 or not isinstance(content, bytes | None):
                return response
            response.close()
            self._answer(response, scope)
        raise AssertionError("unreachable")

    def _answer(self, challenged: httpx.Response, scope: str) -> None:
        challenge = challenged.headers.get("www-authenticate", "")
        if self._credentials is None and challenge.lower().startswith("basic"):
            raise RemoteError("the registry wants credentials and none are stored", 401)
        if challenge.lower().startswith("basic"):
            self._basic = True
            return
        params = dict(_PARAM.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise RemoteError(f"a 401 without a usable challenge: {challenge[:200]}", 401)
        self._allowed(realm)
        query = {"service": params.get("service", ""), "scope": params.get("scope") or scope}
        try:
            r = self._http.get(realm, params=query, auth=self._credentials)
        except httpx.HTTPError as e:
            raise RemoteError(f"token service {realm}: {e}") from None
        if r.status_code != 200:
            raise RemoteError(f"the token service {realm} answered {r.status_code}", r.status_code)
        body = r.json()
        self._tokens[scope] = str(body.get("token") or body.get("access_token") or "")

    # ---- the distribution API -----------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", _push(repository))
        return r.status_code == 200

    def push_blob(self, repository: str, digest: str, chunks: Iterator[bytes]) -> None:
        """Upload a blob: POST (which authenticates), one streamed PATCH, PUT with the digest."""
        scope = _push(repository)
        r = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope)
        _expect(r, 202, f"starting an upload of {digest}")
        location = urllib.parse.urljoin(self.base_url + "/", r.headers["location"])
        r = self.request("PATCH", location, scope,
                         {"Content-Type": "application/octet-stream"}, chunks)  # fmt: skip
        _expect(r, 202, f"uploading {digest}")
        location = urllib.parse.urljoin(self.base_url + "/", r.headers["location"])
        joiner = "&" if "?" in location else "?"
        r = self.request("PUT", f"{location}{joiner}digest={digest}", scope)
        _expect(r, 201, f"finishing the upload of {digest}")

    def push_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> None:
        r = self.request("PUT", f"/v2/{repository}/manifests/{reference}", _push(repository),
                         {"Content-Type": media_type}, body)  # fmt: skip
        _expect(r, 201, f"pushing the manifest {reference}")

    def manifest(self, repository: str, reference: str) -> tuple[str, bytes, str]:
        """(media type, body, announced digest) of a manifest."""
        r = self.request("GET", f"/v2/{repository}/manifests/{reference}", _pull(repository),
                         {"Accept": ACCEPT}, stream=True)  # fmt: skip
        with contextlib.closing(r):
            _expect(r, 200, f"reading the manifest {reference}")
            body = _bounded(r, MAX_MANIFEST_BYTES, f"the manifest {reference}")
        media_type = r.headers.get("content-type", "").split(";")[0].strip()
        return media_type, body, r.headers.get("docker-content-digest", "")

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag names now (HEAD); None if the registry does not know it."""
        r = self.request("HEAD", f"/v2/{repository}/manifests/{reference}", _pull(repository),
                         {"Accept": ACCEPT})  # fmt: skip
        if r.status_code == 404:
            return None
        _expect(r, 200, f"looking up {reference}")
        return r.headers.get("docker-content-digest") or None

    def tags(self, repository: str) -> list[str]:
        found: list[str] = []
        url = f"/v2/{repository}/tags/list?n=1000"
        while url:
            r = self.request("GET", url, _pull(repository), stream=True)
            with contextlib.closing(r):
                _expect(r, 200, "listing tags")
                page = json.loads(_bounded(r, 4 << 20, "a page of tags"))
            found += [t for t in page.get("tags") or [] if isinstance(t, str)]
            if len(found) > MAX_TAGS:
                raise RemoteError(f"{repository} has more than {MAX_TAGS} tags")
            link = r.headers.get("link", "")
            url = link[link.index("<") + 1 : link.index(">")] if "<" in link else ""
        return found

    def blob(self, repository: str, digest: str) -> httpx.Response:
        """A streamed blob (the caller closes it); redirects to storage followed here."""
        r = self.request("GET", f"/v2/{repository}/blobs/{digest}", _pull(repository),
                         stream=True)  # fmt: skip
        if r.status_code in (301, 302, 303, 307, 308):
            r.close()
            target = urllib.parse.urljoin(self.base_url + "/", r.headers["location"])
            self._allowed(target)
            r = self._http.send(self._http.build_request("GET", target), stream=True)
        if r.status_code != 200:
            r.close()
            raise RemoteError(f"reading the blob {digest}: {r.status_code}", r.status_code)
        return r


def _bounded(r: httpx.Response, limit: int, what: str) -> bytes:
    """A streamed answer's body, refused past `limit` bytes (never held whole)."""
    body = bytearray()
    for chunk in r.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise RemoteError(f"{what} is larger than {limit} bytes")
    return bytes(body)


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _expect(r: httpx.Response, status: int, what: str) -> None:
    if r.status_code != status:
        try:
            text = r.text[:300]
        except httpx.ResponseNotRead:  # a streamed answer: its body is not read for this
            text = ""
        raise RemoteError(f"{what}: {r.status_code} {text}", r.status_code)
