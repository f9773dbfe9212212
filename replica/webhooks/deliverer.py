"""Delivering webhooks' events: each webhook is delivered by exactly one replica, the
holder of its lease in the replicated state (consensus/webhooks.py).

Who holds a lease: the first replica in the webhook's rendezvous order (the same on
every replica) claims it; if the holder stops renewing (it died), the lease runs out
and the next in order claims it after TAKEOVER_S more per rank. The holder finds the
events the webhook wants after its settled cursor, delivers each (a few at a time),
retries a failed one after 1, 2, 4, 8 … seconds (at most an hour apart) for a day,
then gives up, and records outcomes and the cursor through Raft every POLL_S. A
replica that lost its lease has its records refused and stops.

A new holder resumes from the settled cursor: an event delivered but not yet recorded
when its holder died is delivered again, with the same X-Qreg-Delivery id. Nothing
here is on the path of a push: a slow or dead receiver only holds delivery slots.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from dataclasses import dataclass, field

from consensus import events, webhooks
from proto import commands_pb2 as pb
from replica.errors import RegistryError
from replica.mirror import pull as mirror_pull
from replica.mirror import push as mirror_push
from replica.mirror.importer import Importer
from replica.mirror.proxy import PROXY
from replica.mirror.remote import remote_of
from replica.registry import Registry
from replica.rendezvous import ranked
from replica.sealing import Sealer
from replica.webhooks.delivery import Clients, Outcome, encode, payload, send

log = logging.getLogger("qreg.webhooks")

POLL_S = 0.2
LEASE_MS = 10_000
RENEW_MS = 3_000
TAKEOVER_S = 2.0
IN_FLIGHT_PER_HOOK = 8
QUEUED_MAX = 1000
GIVE_UP_MS = 86_400_000
MAX_BACKOFF_S = 3600.0


def sealer(secret: str) -> Sealer:
    return Sealer(secret, b"qreg webhook secrets")


def backoff_s(failures: int) -> float:
    """Seconds before the next attempt after `failures` failed ones: 1, 2, 4, …"""
    return float(min(MAX_BACKOFF_S, 2 ** (failures - 1)))


@dataclass
class _Pending:
    event: pb.Event
    failures: int = 0
    next_at: float = 0.0
    running: bool = False


@dataclass
class _Duty:
    """What this replica does for one webhook while it holds its lease."""

    until_ms: int
    scanned: int  # every event up to this id is queued or was settled
    queue: dict[int, _Pending] = field(default_factory=dict)
    done: list[pb.Delivery] = field(default_factory=list)
    next_poll: float = 0.0  # a pull mirror's next look at its source (monotonic)
    polling: bool = False


class Deliverer:
    def __init__(
        self, registry: Registry, secret: str, registry_host: str, importer: Importer
    ) -> None:
        self.registry = registry
        self.importer = importer
        self.state = registry.state
        self.me = registry.replica_id
        self._sealer = sealer(secret)
        self.host = registry_host
        self._duties: dict[str, _Duty] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients = Clients()
        self._pool = concurrent.futures.ThreadPoolExecutor(16, thread_name_prefix="webhook")

    def seal(self, secret: bytes) -> bytes:
        return self._sealer.seal(secret)

    def open_secret(self, hook: pb.Webhook) -> bytes:
        return self._sealer.open(hook.sealed_secret) if hook.sealed_secret else b""

    def open_password(self, hook: pb.Webhook) -> str:
        """A mirror's or proxy's password on the other registry ("" if none)."""
        return self._sealer.open(hook.sealed_password).decode() if hook.sealed_password else ""

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                # A proxy is served by every replica, on demand: nothing to deliver.
                hooks = [h for h in self.state.view(webhooks.webhooks) if h.kind != PROXY]
                for gone in set(self._duties) - {h.id for h in hooks if h.active}:
                    del self._duties[gone]
                for hook in hooks:
                    if hook.active:
                        await self._tend(hook)
            except Exception:
                log.exception("webhook deliveries: a round failed; the next one retries")

    # ---- the lease ---------------------------------------------------------------------

    async def _tend(self, hook: pb.Webhook) -> None:
        now_ms = int(time.time() * 1000)
        duty = self._duties.get(hook.id)
        if duty is not None and duty.until_ms - now_ms < LEASE_MS - RENEW_MS:
            if not await self._claim(hook, now_ms):
                self._duties.pop(hook.id, None)
                return
            duty.until_ms = now_ms + LEASE_MS
        if duty is None:
            lease = self.state.view(webhooks.lease, hook.id)
            if lease is not None and lease.until_ms > now_ms and lease.replica_id != self.me:
                return  # another replica delivers it
            if not self._my_turn(hook, lease, now_ms):
                return
            if not await self._claim(hook, now_ms):
                return
            settled = self.state.view(webhooks.settled, hook.id)
            duty = self._duties[hook.id] = _Duty(now_ms + LEASE_MS, settled)
            log.info("delivering webhook %s from event %d", hook.id, settled)
        if hook.kind == mirror_pull.PULL_MIRROR:
            self._poll(hook, duty)
        else:
            await self._deliver(hook, duty)

    def _my_turn(self, hook: pb.Webhook, lease: pb.ClaimWebhook | None, now_ms: int) -> bool:
        members = self.registry.replication.member_ids() or [self.me]
        if self.me not in members:
            return False
        rank = ranked(hook.id, members).index(self.me)
        free_since = lease.until_ms if lease is not None else 0
        return now_ms >= free_since + rank * TAKEOVER_S * 1000

    async def _claim(self, hook: pb.Webhook, now_ms: int) -> bool:
        claim = pb.ClaimWebhook(
            id=hook.id, replica_id=self.me, at_ms=now_ms, until_ms=now_ms + LEASE_MS
        )
        try:
            await self.registry.propose(pb.Command(claim_webhook=claim))
        except RegistryError:
            return False
        return True

    # ---- deliveries --------------------------------------------------------------------

    async def _deliver(self, hook: pb.Webhook, duty: _Duty) -> None:
        found: list[pb.Event] = []
        if len(duty.queue) < QUEUED_MAX:  # a receiver down for long: memory stays bounded
            found, duty.scanned = self.state.view(webhooks.due_events, hook, duty.scanned)
        for event in found:
            if hook.kind != mirror_push.PUSH_MIRROR or mirror_push.mirrors(hook, event):
                duty.queue.setdefault(event.id, _Pending(event))
        recording = {d.event for d in duty.done}  # delivered, the record not yet applied
        for event_id in self.state.view(webhooks.redeliveries, hook.id):
            if event_id not in duty.queue and event_id not in recording:
                again = self.state.view(events.by_id, event_id)
                if again is not None:
                    duty.queue[event_id] = _Pending(again)
        self._pump(hook, duty)
        await self._record(hook, duty)

    def _pump(self, hook: pb.Webhook, duty: _Duty) -> None:
        """Start attempts that are due, up to IN_FLIGHT_PER_HOOK (also as each ends:
        a busy webhook is not held to one batch per round)."""
        running = sum(1 for p in duty.queue.values() if p.running)
        now = time.monotonic()
        for pending in sorted(duty.queue.values(), key=lambda p: p.event.id):
            if running >= IN_FLIGHT_PER_HOOK:
                break
            if not pending.running and pending.next_at <= now:
                pending.running = True
                running += 1
                task = asyncio.create_task(self._attempt(hook, duty, pending))
                self._tasks.add(task)  # held until done: the loop keeps only weak references
                task.add_done_callback(self._tasks.discard)

    async def _attempt(self, hook: pb.Webhook, duty: _Duty, pending: _Pending) -> None:
        event = pending.event
        try:
            if hook.kind == mirror_push.PUSH_MIRROR:
                outcome = await self._mirror(hook, event)
            else:
                body = encode(payload(hook, event, self.host))
                delivery_id = f"{hook.id}:{event.id}"
                secret = self.open_secret(hook)
                outcome = await asyncio.get_running_loop().run_in_executor(
                    self._pool, send, hook, secret, event.type, delivery_id, body, self._clients
                )
        except Exception as e:  # a secret sealed elsewhere, an image gone, a shutdown
            outcome = Outcome(False, 0, f"{type(e).__name__}: {e}"[:500], 0)
        pending.running = False
        pending.failures += 0 if outcome.ok else 1
        too_old = time.time() * 1000 - event.at_ms > GIVE_UP_MS
        if outcome.ok or too_old:
            duty.queue.pop(event.id, None)
            duty.done.append(
                pb.Delivery(
                    event=event.id,
                    status="delivered" if outcome.ok else "failed",
                    code=outcome.code,
                    attempts=pending.failures + (1 if outcome.ok else 0),
                    at_ms=int(time.time() * 1000),
                    replica_id=self.me,
                    excerpt=outcome.excerpt,
                    millis=outcome.millis,
                )
            )
        else:
            pending.next_at = time.monotonic() + backoff_s(pending.failures)
            log.info(
                "webhook %s: event %d not delivered (%s %s); again in %.0f s",
                hook.id, event.id, outcome.code or "no answer", outcome.excerpt[:100],
                backoff_s(pending.failures),
            )  # fmt: skip
        self._after_attempt(hook, duty)

    def _after_attempt(self, hook: pb.Webhook, duty: _Duty) -> None:
        if self._duties.get(hook.id) is duty:
            self._pump(hook, duty)

    async def _mirror(self, hook: pb.Webhook, event: pb.Event) -> Outcome:
        """Copy a pushed tag's image to the mirror's repository on another registry."""
        await mirror_push.ensure_local(self.registry, event.repository, event.digest)
        password = self.open_password(hook)

        def copy() -> Outcome:
            remote, target = remote_of(hook, password)
            with remote:
                return mirror_push.push(
                    self.registry.state, self.registry.store, event, remote, target
                )

        return await asyncio.get_running_loop().run_in_executor(self._pool, copy)

    async def _record(self, hook: pb.Webhook, duty: _Duty) -> None:
        settled = min(duty.queue) - 1 if duty.queue else duty.scanned
        if not duty.done and settled <= self.state.view(webhooks.settled, hook.id):
            return
        done, duty.done = duty.done, []
        record = pb.RecordDeliveries(
            id=hook.id, replica_id=self.me, deliveries=done, settled=max(settled, 0)
        )
        try:
            await self.registry.propose(pb.Command(record_deliveries=record))
        except RegistryError as e:
            if e.code == "CONFLICT":  # the lease went to another replica: stop
                self._duties.pop(hook.id, None)
            else:
                duty.done = done + duty.done  # no quorum now: the next round retries

    # ---- pull mirrors ------------------------------------------------------------------

    def _poll(self, hook: pb.Webhook, duty: _Duty) -> None:
        if duty.polling or time.monotonic() < duty.next_poll:
            return
        duty.polling = True
        task = asyncio.create_task(self._poll_once(hook, duty))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll_once(self, hook: pb.Webhook, duty: _Duty) -> None:
        started = time.monotonic()
        try:
            records = await mirror_pull.poll(self.importer, hook, self.open_password(hook), self.me)
        except Exception:  # a password sealed with another secret: nothing to log per tag
            log.exception("pull mirror %s: the poll failed", hook.id)
            records = []
        finally:
            duty.polling = False
            duty.next_poll = started + mirror_pull.interval_s(hook)
        if records and self._duties.get(hook.id) is duty:
            record = pb.RecordDeliveries(id=hook.id, replica_id=self.me, deliveries=records)
            try:
                await self.registry.propose(pb.Command(record_deliveries=record))
            except RegistryError as e:
                log.warning("pull mirror %s: its log not recorded: %s", hook.id, e)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._clients.close()
