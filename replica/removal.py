"""A replica removed from the cluster while it runs finds out, stops, and says so.

Once `qreg remove` (or an emergency repair elsewhere) drops a replica from the Raft
configuration, the members stop talking to it and it never learns why: pysyncobj
keeps it campaigning, its term climbs, and every write it receives answers "no
leader is elected", which sends the operator after the wrong problem.

RemovalWatch notices a replica that has had no leader, or not heard from it, for
LEADERLESS_S, and asks its peers' /health (with the cluster's credentials, which
show the Raft members): when one that has a leader does not list this replica's
Raft address, it was removed. The replica then stops its Raft node (no more campaigning), logs one
clear line, reports `removed` in /health and answers every other request 503 with
what to do. It stays up rather than exit, so a supervisor that restarts it does
not loop; the operator wipes its data directory and joins it again, or stops it.
A replica that is still joining (replica/joining.py) is not a member yet and is
left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from replica import joining
from replica.errors import Unavailable
from replica.peers import PeerError
from replica.registry import Registry

log = logging.getLogger("qreg.removal")

LEADERLESS_S = 5.0
CHECK_EVERY_S = 2.0


class RemovalWatch:
    def __init__(self, registry: Registry, data_dir: str) -> None:
        self._registry = registry
        self._data_dir = data_dir
        self.removed: str | None = None  # why, once removed

    async def run(self) -> None:
        cut_off_since: float | None = None
        while self.removed is None:
            await asyncio.sleep(CHECK_EVERY_S)
            raft = self._registry.raft
            # No leader, or one that has not been heard from: a removed replica keeps
            # naming its old leader when nobody will even connect to it.
            cut_off = raft.leader_address() is None or raft.leader_silent_for() > LEADERLESS_S
            if joining.pending(self._data_dir) or not cut_off:
                cut_off_since = None
                continue
            now = time.monotonic()
            cut_off_since = cut_off_since or now
            if now - cut_off_since >= LEADERLESS_S and await self._was_removed():
                await self._stop()

    async def _was_removed(self) -> bool:
        me = self._registry.raft.self_address
        for peer in self._registry.state.replicas():
            if peer.replica_id == self._registry.replica_id:
                continue
            try:
                view = await self._registry.peers.health(peer.http_url)
            except PeerError:
                continue
            members = view.get("raft_members")
            if view.get("leader") and isinstance(members, list) and me not in members:
                self.removed = (
                    f"this replica ({self._registry.replica_id}, Raft {me}) was "
                    f"removed from the cluster: {peer.replica_id} lists the members "
                    f"{', '.join(members)}"
                )
                return True
        return False

    async def _stop(self) -> None:
        log.error(
            "%s. It stopped taking part; stop it, or wipe its data directory and "
            "qreg join it again",
            self.removed,
            extra={"fields": {"event": "removed"}},
        )
        await asyncio.to_thread(self._registry.raft.close)


class RemovedGuard:
    """ASGI middleware: once removed, every request but /health is answered 503."""

    def __init__(self, app: Any, app_state: Any) -> None:
        self._app = app
        self._state = app_state  # holds the replica's context once it started

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        context = getattr(self._state, "context", None) if scope["type"] == "http" else None
        watch = context.removal if context is not None else None
        if watch is None or watch.removed is None or scope["path"] == "/health":
            await self._app(scope, receive, send)
            return
        error = Unavailable(
            f"{watch.removed}. Use another replica; an operator stops this one "
            "or wipes its data directory and joins it again"
        )
        await error.response()(scope, receive, send)
