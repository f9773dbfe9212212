"""Reads that must not be stale: wait until this replica has applied the leader's commit index.

This is Raft's ReadIndex. Concurrent reads share one round trip to the leader,
but a read never uses an index fetched before it arrived: arrivals during a
fetch form the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class ReadBarrier:
    def __init__(
        self,
        fetch_index: Callable[[], Awaitable[int]],
        wait_applied: Callable[[int], Awaitable[None]],
    ) -> None:
        self._fetch_index = fetch_index
        self._wait_applied = wait_applied
        self._next: asyncio.Future[int] | None = None
        self._running: asyncio.Future[int] | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    async def __call__(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            task = asyncio.ensure_future(self._run(self._next))
            self._tasks.add(task)  # kept: the loop holds tasks weakly
            task.add_done_callback(self._tasks.discard)
        index = await asyncio.shield(self._next)
        await self._wait_applied(index)

    async def _run(self, batch: asyncio.Future[int]) -> None:
        while self._running is not None:
            await asyncio.wait([self._running])
        self._running = batch
        self._next = None  # from here on, arrivals need a later index
        try:
            batch.set_result(await self._fetch_index())
        except Exception as e:  # every waiter of the batch sees it
            batch.set_exception(e)
            batch.exception()  # mark retrieved: a batch may have no waiter left
        finally:
            self._running = None
