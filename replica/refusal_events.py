"""Refused pulls (a repository's vulnerability or signing policy) as events, for the
events API and webhooks. At most one per repository, user and reason a minute, and
PER_MINUTE in all on a replica: a client retrying a refused pull must not become a
stream of Raft writes."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from proto import commands_pb2 as pb
from replica.errors import RegistryError
from replica.registry import Registry

log = logging.getLogger("qreg.events")

PER_MINUTE = 30
_SAME_S = 60.0


class RefusalEvents:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._recent: dict[tuple[str, str, str], float] = {}
        self._window: list[float] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def note(self, repository: str, reference: str, digest: str, user: str, reason: str) -> None:
        """Record a refusal as an event, unless one like it was recorded lately."""
        now = time.monotonic()
        self._window = [t for t in self._window if now - t < 60]
        key = (repository, user, reason[:80])
        if now - self._recent.get(key, -_SAME_S) < _SAME_S or len(self._window) >= PER_MINUTE:
            return
        self._recent = {k: t for k, t in self._recent.items() if now - t < _SAME_S}
        self._recent[key] = now
        self._window.append(now)
        tag = reference if not reference.startswith("sha256:") else ""
        event = pb.Event(type="refusal", repository=repository, tag=tag, digest=digest,
                         actor=user, detail=json.dumps({"reason": reason[:500]}))  # fmt: skip
        task = asyncio.create_task(self._record(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, event: pb.Event) -> None:
        try:
            await self.registry.propose(pb.Command(record_event=pb.RecordEvent(event=event)))
        except RegistryError as e:
            log.info("a refused pull was not recorded as an event: %s", e.message)
