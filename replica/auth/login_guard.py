"""What protects the password check: a failure limiter and a bounded hashing pool.

The limiter admits an attempt *before* the slow hash runs, counting the attempts
still in flight, in one synchronous step on the event loop: a burst of concurrent
wrong logins cannot slip more guesses through than the limit allows.

Its keys, and why:
- (user, address), 5 per minute: one client guessing one account's password.
  A guesser elsewhere cannot lock the real user out from the user's own address.
- address, 20 per minute: one client trying many accounts (many users may share a
  NAT or proxy, hence more than per pair).
- user, 100 per minute: a guess spread over many addresses. Reaching it takes at
  least 20 addresses at full rate; only then is the account itself slowed.

Limits are per replica, knowingly: replicating every failed login through Raft
would let a guessing attack load the metadata log of the whole cluster. Behind a
load balancer spreading over N replicas, a guesser gets at most N times the rate.

scrypt runs in its own small pool (half the cores at most), never the default
executor that blob reads and writes use, with a bounded queue: beyond it, logins
answer 429 at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from replica.errors import TooManyRequests

T = TypeVar("T")

WINDOW_S = 60.0
LIMITS = {"pair": 5, "addr": 20, "user": 100}
_MAX_TRACKED = 50_000


class LoginLimiter:
    """Failed attempts per key within a sliding minute, plus the attempts in flight.

    An attempt is admitted only if the failures so far plus the attempts still being
    checked stay under every key's limit; otherwise it waits for one of those to end
    (a success frees its place) or, once the failures alone reach the limit, is
    refused. So twenty concurrent logins of one CI job all succeed, while twenty
    concurrent wrong guesses get exactly five checks. Memory is bounded however
    many keys are tried.
    """

    def __init__(self, limits: dict[str, int] | None = None, window_s: float = WINDOW_S) -> None:
        self._limits = limits or LIMITS
        self._window = window_s
        self._failures: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._changed: asyncio.Event | None = None

    @staticmethod
    def keys(user: str, address: str) -> list[str]:
        user = user[:100]
        return [f"pair:{user}@{address}", f"addr:{address}", f"user:{user}"]

    def _limit(self, key: str) -> int:
        return self._limits[key.split(":", 1)[0]]

    def retry_after(self, keys: list[str]) -> int:
        """Seconds until the failures alone leave room under every limit (0: now)."""
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            times = self._failures.get(key)
            if not times:
                continue
            while times and now - times[0] > self._window:
                times.popleft()
            if len(times) >= self._limit(key):
                wait = max(wait, self._window - (now - times[0]))
        return int(wait) + 1 if wait > 0 else 0

    async def acquire(self, keys: list[str], patience_s: float = 10.0) -> int:
        """Admit an attempt: 0 once admitted, else the seconds to wait before retrying."""
        deadline = time.monotonic() + patience_s
        while True:
            wait = self.retry_after(keys)
            if wait:
                return wait
            if all(
                len(self._failures.get(k, ())) + self._in_flight.get(k, 0) < self._limit(k)
                for k in keys
            ):
                for key in keys:
                    self._in_flight[key] = self._in_flight.get(key, 0) + 1
                return 0
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                return 1

    def release(self, keys: list[str], failed: bool) -> None:
        """An admitted attempt ended; a failure counts for a minute."""
        now = time.monotonic()
        self._prune(now)
        for key in keys:
            left = self._in_flight.get(key, 0) - 1
            if left > 0:
                self._in_flight[key] = left
            else:
                self._in_flight.pop(key, None)
            if failed:
                self._failures.setdefault(key, deque()).append(now)
        if self._changed is not None:  # wake the waiting attempts: they check again
            self._changed.set()
            self._changed = None

    def _prune(self, now: float) -> None:
        if len(self._failures) <= _MAX_TRACKED:
            return
        self._failures = {
            k: v for k, v in self._failures.items() if v and now - v[-1] <= self._window
        }
        if len(self._failures) > _MAX_TRACKED:  # a flood of fresh keys: forget the oldest half
            ordered = sorted(self._failures.items(), key=lambda kv: kv[1][-1])
            self._failures = dict(ordered[len(ordered) // 2 :])


class HashingBusy(TooManyRequests):
    """Too many password checks queued on this replica: 429, try again in a second."""

    def __init__(self) -> None:
        super().__init__(
            "too many logins in progress on this replica", headers={"Retry-After": "1"}
        )


class HashingPool:
    """A small thread pool for password hashing with a bounded number waiting."""

    def __init__(self, workers: int | None = None, max_pending: int = 32) -> None:
        # Half the cores at most: a login flood must leave CPU for pushes and pulls.
        workers = workers or max(1, (os.cpu_count() or 2) // 2)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="qreg-hash"
        )
        self._max_pending = max_pending
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self._pending >= self._max_pending:
            raise HashingBusy()
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
