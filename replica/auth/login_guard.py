"""What protects the password check: a failure limiter and a bounded hashing pool.

The limiter counts an attempt *before* the slow hash runs (a reservation that a
success gives back), in one synchronous step on the event loop, so a burst of
concurrent wrong logins cannot slip more guesses through than the limit allows.

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

scrypt runs in its own small pool, never the default executor that blob reads
and writes use, with a bounded queue: beyond it, logins answer 429 at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import deque
from typing import Callable, TypeVar

from replica.errors import TooManyRequests

T = TypeVar("T")

WINDOW_S = 60.0
LIMITS = {"pair": 5, "addr": 20, "user": 100}
_MAX_TRACKED = 50_000


class LoginLimiter:
    """Attempts per key within a sliding minute; memory bounded however many keys."""

    def __init__(self, limits: dict[str, int] | None = None, window_s: float = WINDOW_S) -> None:
        self._limits = limits or LIMITS
        self._window = window_s
        self._attempts: dict[str, deque[float]] = {}

    @staticmethod
    def keys(user: str, address: str) -> list[str]:
        user = user[:100]
        return [f"pair:{user}@{address}", f"addr:{address}", f"user:{user}"]

    def reserve(self, keys: list[str]) -> int:
        """Count an attempt now; 0 if allowed, else the seconds to wait (nothing counted)."""
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            times = self._attempts.get(key)
            if not times:
                continue
            while times and now - times[0] > self._window:
                times.popleft()
            if len(times) >= self._limits[key.split(":", 1)[0]]:
                wait = max(wait, self._window - (now - times[0]))
        if wait > 0:
            return int(wait) + 1
        self._prune(now)
        for key in keys:
            self._attempts.setdefault(key, deque()).append(now)
        return 0

    def release(self, keys: list[str]) -> None:
        """A successful login gives its reservation back: only failures count."""
        for key in keys:
            times = self._attempts.get(key)
            if times:
                times.pop()

    def _prune(self, now: float) -> None:
        if len(self._attempts) <= _MAX_TRACKED:
            return
        self._attempts = {k: v for k, v in self._attempts.items()
                          if v and now - v[-1] <= self._window}
        if len(self._attempts) > _MAX_TRACKED:  # a flood of fresh keys: forget the oldest half
            ordered = sorted(self._attempts.items(), key=lambda kv: kv[1][-1])
            self._attempts = dict(ordered[len(ordered) // 2:])


class HashingBusy(TooManyRequests):
    """Too many password checks queued on this replica: 429, try again in a second."""

    def __init__(self) -> None:
        super().__init__("too many logins in progress on this replica",
                         headers={"Retry-After": "1"})


class HashingPool:
    """A small thread pool for password hashing with a bounded number waiting."""

    def __init__(self, workers: int = 2, max_pending: int = 32) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="qreg-hash")
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
