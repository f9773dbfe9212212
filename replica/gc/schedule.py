"""Scheduled garbage collection, in DTR's cron format with seconds first
("0 0 0 * * *": every day at midnight), in UTC.

Every replica watches the schedule kept in the state; at each time it fires, the
replica leading Raft runs the collection (the collector's lease keeps a second
replica from running one at the same time).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from croniter import croniter

from consensus import gc_runs
from proto import commands_pb2 as pb
from replica.errors import InvalidInput, RegistryError
from replica.gc.collector import Collector

log = logging.getLogger("qreg.gc.schedule")

_RECHECK_S = 1.0  # a changed schedule is noticed this soon


def check_cron(expression: str) -> str:
    """The expression if valid (six fields, seconds first), else InvalidInput."""
    expression = " ".join(expression.split())
    if len(expression.split()) != 6 or not croniter.is_valid(expression, second_at_beginning=True):
        raise InvalidInput(
            f"{expression[:100]!r} is not a schedule: six fields, seconds first, as "
            "'0 0 0 * * *' (every day at midnight UTC) or '0 30 2 * * 0' (Sundays 02:30)"
        )
    return expression


def next_time(expression: str, after: datetime) -> datetime:
    found: datetime = croniter(expression, after, second_at_beginning=True).get_next(datetime)
    return found


class Schedule:
    def __init__(self, collector: Collector) -> None:
        self._collector = collector

    def next_run(self) -> datetime | None:
        cron = self._collector.registry.state.view(gc_runs.schedule).cron
        return next_time(cron, datetime.now(UTC)) if cron else None

    async def run(self) -> None:
        due: datetime | None = None
        cron = ""
        while True:
            current = self._collector.registry.state.view(gc_runs.schedule)
            now = datetime.now(UTC)
            if current.cron != cron:
                cron = current.cron
                due = next_time(cron, now) if cron else None
            if due is None:
                await asyncio.sleep(_RECHECK_S)
                continue
            wait = (due - now).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, _RECHECK_S))
                continue
            due = next_time(cron, now)
            if self._collector.registry.raft.is_leader():
                await self._run(current)

    async def _run(self, settings: pb.SetCollectionSchedule) -> None:
        log.info("the scheduled garbage collection starts")
        try:
            await self._collector.run(
                float(settings.time_limit_s), float(settings.untagged_after_s)
            )
        except RegistryError as e:
            log.warning("the scheduled garbage collection did not run: %s", e.message)
        except Exception:
            log.exception("the scheduled garbage collection failed")
