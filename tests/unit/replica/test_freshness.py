"""The read barrier (ReadIndex): concurrent reads share one fetch of the leader's index,
and a read never uses an index fetched before it arrived."""

from __future__ import annotations

import asyncio

import pytest

from replica.freshness import ReadBarrier


class FakeLeader:
    """The leader's side of ReadIndex, for the barrier alone (the real one is tested
    through processes): each fetch returns the next index, once released."""

    def __init__(self) -> None:
        self.fetches = 0
        self.release = asyncio.Event()
        self.waited: list[int] = []

    async def fetch(self) -> int:
        self.fetches += 1
        await self.release.wait()
        self.release.clear()
        return self.fetches * 10

    async def wait_applied(self, index: int) -> None:
        self.waited.append(index)


def test_reads_that_arrive_together_share_one_fetch() -> None:
    async def scenario() -> FakeLeader:
        leader = FakeLeader()
        barrier = ReadBarrier(leader.fetch, leader.wait_applied)
        reads = [asyncio.ensure_future(barrier()) for _ in range(20)]
        await asyncio.sleep(0)
        leader.release.set()
        await asyncio.gather(*reads)
        return leader

    leader = asyncio.run(scenario())
    assert leader.fetches == 1 and leader.waited == [10] * 20


def test_a_read_arriving_during_a_fetch_waits_for_the_next_one() -> None:
    async def scenario() -> tuple[FakeLeader, int]:
        leader = FakeLeader()
        barrier = ReadBarrier(leader.fetch, leader.wait_applied)
        first = asyncio.ensure_future(barrier())
        await asyncio.sleep(0.01)  # the first fetch is under way
        late = asyncio.ensure_future(barrier())
        await asyncio.sleep(0.01)
        leader.release.set()
        await first
        await asyncio.sleep(0.01)
        leader.release.set()
        await late
        return leader, leader.waited[-1]

    leader, late_index = asyncio.run(scenario())
    assert leader.fetches == 2 and late_index == 20


def test_a_failed_fetch_fails_its_batch_and_the_next_one_tries_again() -> None:
    async def scenario() -> None:
        calls = 0

        async def fetch() -> int:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("no leader")
            return 7

        applied: list[int] = []

        async def wait_applied(index: int) -> None:
            applied.append(index)

        barrier = ReadBarrier(fetch, wait_applied)
        with pytest.raises(RuntimeError):
            await barrier()
        await barrier()
        assert applied == [7]

    asyncio.run(scenario())
