"""One run of a piece of work per key at a time: a caller asking for work already under
way waits for it and shares its outcome (success or the same exception)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable


class SingleFlight:
    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[None]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[None]]) -> None:
        running = self._running.get(key)
        if running is not None:
            await asyncio.shield(running)  # a waiter cancelled does not cancel the work
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            await work()
            done.set_result(None)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except Exception as e:
            done.set_exception(e)
            done.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            del self._running[key]
