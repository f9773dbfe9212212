"""Proxy repositories (Harbor's proxy-cache projects): a namespace that is a
read-through cache of another registry.

Pulling `proxy/library/alpine:3` from a proxy of scope "proxy/" and upstream
https://upstream.example reads `library/alpine:3` there on first use and keeps the image
in the cluster (replicated like any push): from then on it is served from here. A tag is
checked upstream again (one HEAD) once `interval_s` has passed since it was last checked;
a digest, immutable, never is. With the upstream down, what is cached stays pullable. On
one replica each image and each blob is fetched once at a time (replica/mirror/importer.py).
Pushes and deletions in a proxy namespace are refused: upstream is its only source.
app.py asks `proxy_of` for every /v2 request (while no proxy changes, an integer
compare and a prefix check per proxy) and calls `before` only for a proxy's repositories.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from consensus import webhooks
from proto import commands_pb2 as pb
from replica.errors import Denied, RegistryError, Unavailable
from replica.mirror.importer import Importer
from replica.mirror.remote import RemoteError, RemoteRegistry
from replica.mirror.single_flight import SingleFlight
from replica.names import check_digest, check_reference, is_tag

log = logging.getLogger("qreg.proxy")

PROXY = "proxy"
DEFAULT_INTERVAL_S = 3600
_CHECKED_KEPT = 100_000


def upstream_of(url: str) -> tuple[str, str]:
    """'https://host[:port][/prefix]' -> ('https://host[:port]', 'prefix/' or '')."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError("a proxy's upstream is https://HOST[:PORT][/PATH-PREFIX]")
    prefix = parts.path.strip("/")
    return f"{parts.scheme}://{parts.netloc}", prefix + "/" if prefix else ""


class Proxies:
    def __init__(self, importer: Importer, password_of: Callable[[pb.Webhook], str]) -> None:
        self.importer = importer
        self.state = importer.registry.state
        self._password_of = password_of
        self._known: tuple[int, list[pb.Webhook]] = (-1, [])
        self._remotes: dict[str, tuple[bytes, RemoteRegistry]] = {}
        self._checked: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._running = SingleFlight()  # one look upstream per (repository, reference)
        self.upstream_checks = 0  # tags looked up upstream (for the metrics)
        self.served_stale = 0  # cached tags served with the upstream unreachable

    def proxy_of(self, repository: str) -> pb.Webhook | None:
        generation = self.state.webhooks_generation
        if self._known[0] != generation:
            hooks = self.state.view(webhooks.webhooks)
            self._known = (generation, [h for h in hooks if h.kind == PROXY and h.active])
        for hook in self._known[1]:
            if repository.startswith(hook.scope):
                return hook
        return None

    async def before(
        self, hook: pb.Webhook, method: str, route: str, repository: str, reference: str
    ) -> None:
        """Called before a /v2 request on a repository of the proxy `hook` is served:
        its content fetched if it is not here (or a tag is due a check); writes refused."""
        if method not in ("GET", "HEAD"):
            raise Denied(f"{hook.scope} is a proxy of {hook.url}: it is read-only")
        try:  # nothing malformed goes upstream; the handler answers it with its error
            check_reference(reference) if route == "manifests" else check_digest(reference)
        except RegistryError:
            return
        if route == "manifests":
            key = (repository, reference)
            await self._running.run(key, lambda: self._manifest(hook, repository, reference))
        elif route == "blobs" and self.state.blob_link(repository, reference) is None:
            remote, source = self._remote(hook, repository)
            await self._guard(self.importer.blob(remote, source, reference, repository))

    async def _manifest(self, hook: pb.Webhook, repository: str, reference: str) -> None:
        ours = self.state.resolve(repository, reference)
        if not is_tag(reference):
            if ours is None:
                remote, source = self._remote(hook, repository)
                await self._guard(self.importer.image(remote, source, reference, repository))
            return
        key = (repository, reference)
        checked = self._checked.get(key)
        interval = hook.interval_s or DEFAULT_INTERVAL_S
        if ours is not None and checked is not None and time.monotonic() - checked < interval:
            return
        remote, source = self._remote(hook, repository)
        self.upstream_checks += 1
        try:
            theirs = await self.importer.call(remote.manifest_digest, source, reference)
        except RemoteError as e:
            if ours is None:
                raise Unavailable(f"the upstream {hook.url} cannot be reached: {e}") from None
            log.warning(
                "proxy %s: serving %s:%s as cached: %s", hook.scope, repository, reference, e
            )
            self.served_stale += 1
            self._check(key)  # asked again after the interval, not at every pull
            return
        if theirs is not None and theirs != ours:
            await self._guard(self.importer.image(remote, source, reference, repository, reference))
        self._check(key)

    def _check(self, key: tuple[str, str]) -> None:
        self._checked[key] = time.monotonic()
        self._checked.move_to_end(key)
        while len(self._checked) > _CHECKED_KEPT:
            self._checked.popitem(last=False)

    async def _guard(self, work: Awaitable[object]) -> None:
        try:
            await work
        except RemoteError as e:
            if e.code == 404:
                return  # not upstream either: the normal answer (unknown) follows
            raise Unavailable(f"the upstream registry answered: {e}") from None

    def _remote(self, hook: pb.Webhook, repository: str) -> tuple[RemoteRegistry, str]:
        """The upstream's client (kept: its tokens are reused) and the repository there."""
        base, prefix = upstream_of(hook.url)
        fingerprint = hook.SerializeToString(deterministic=True)
        kept = self._remotes.get(hook.id)
        if kept is None or kept[0] != fingerprint:
            if kept is not None:
                kept[1].close()
            remote = RemoteRegistry.of(hook, self._password_of(hook), base)
            kept = self._remotes[hook.id] = (fingerprint, remote)
        return kept[1], prefix + repository[len(hook.scope) :]

    def close(self) -> None:
        for _, remote in self._remotes.values():
            remote.close()
