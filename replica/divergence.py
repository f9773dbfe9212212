"""Noticing a replica whose metadata is not what the log says it should be.

Every replica keeps a digest of its state at each applied index (consensus/
state_digest.py). This module raises the alarm when:

- the state no longer matches its own digest (checked at start and then every
  `[state] verify_interval_s`: a full recount, in a worker thread), which is what
  rot or a change behind the state machine's back looks like; or
- a peer's digest at an index both have applied differs (compared every few
  seconds, over the cluster's internal endpoint).

An alarm is logged at error (event=state_diverged), sets the metric
qreg_state_diverged to 1 and shows in /health and `qreg status` as "diverged at
index N". It stays raised until the process restarts: a diverged replica must be
looked at (`qreg verify` names the key ranges that differ) and rebuilt, not trusted
again silently.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from replica.metrics import Metrics
from replica.peers import PeerError
from replica.registry import Registry

log = logging.getLogger("qreg.divergence")

COMPARE_EVERY_S = 5.0
SHARED_RECENT = 256  # how many of its latest digests a replica shows its peers


class DivergenceMonitor:
    def __init__(self, registry: Registry, metrics: Metrics, verify_interval_s: float) -> None:
        self._registry = registry
        self._metrics = metrics
        self._verify_interval_s = verify_interval_s
        self.diverged_at: int | None = None
        self.reason = ""

    def raise_alarm(self, index: int, reason: str) -> None:
        if self.diverged_at is None:
            self.diverged_at, self.reason = index, reason
            self._metrics.state_diverged.set(1)
        log.error(
            "metadata diverged at index %d: %s",
            index,
            reason,
            extra={"fields": {"event": "state_diverged", "index": index}},
        )

    def health(self) -> dict[str, Any]:
        if self.diverged_at is None:
            return {}
        return {"diverged_at": self.diverged_at, "divergence": self.reason}

    async def run(self) -> None:
        await self.verify_at_rest()
        elapsed = 0.0
        while True:
            await asyncio.sleep(COMPARE_EVERY_S)
            elapsed += COMPARE_EVERY_S
            await self.compare_with_peers()
            if self._verify_interval_s and elapsed >= self._verify_interval_s:
                elapsed = 0.0
                await self.verify_at_rest()

    async def verify_at_rest(self) -> None:
        index, kept, recounted = await asyncio.to_thread(self._registry.state.verify_at_rest)
        if kept != recounted:
            self.raise_alarm(
                index,
                "the metadata no longer matches its own digest (changed "
                "on disk behind the state machine)",
            )

    async def compare_with_peers(self) -> None:
        registry = self._registry
        ours = dict(registry.state.recent_digests())
        for peer in registry.state.replicas():
            if peer.replica_id == registry.replica_id:
                continue
            try:
                theirs = await registry.peers.state_digests(peer.http_url)
            except PeerError:
                continue
            self._metrics.state_checks.inc()
            common = sorted(set(ours) & set(theirs))
            if not common:
                continue
            for index in common:
                if ours[index] != theirs[index]:
                    self.raise_alarm(
                        index, f"the state differs from {peer.replica_id}'s at index {index}"
                    )
                    return


def recent_for_peers(registry: Registry) -> list[list[Any]]:
    return [[i, d] for i, d in registry.state.recent_digests()[-SHARED_RECENT:]]
