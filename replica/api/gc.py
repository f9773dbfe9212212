"""Garbage collection in the management API, for administrators and the cluster's
own credential (qreg gc with --config).

GET    /api/v0/gc            the schedule, who is collecting, the last runs with each
                             replica's sweep
POST   /api/v0/gc/runs       collect now ({"dry_run": true} only reports); waits for it;
                             {"untagged_days": N} also removes untagged manifests
                             (default: the schedule's setting)
PUT    /api/v0/gc/schedule   {"cron": "0 0 0 * * *", "time_limit_s": 1800,
                              "untagged_days": 0}
DELETE /api/v0/gc/schedule   no more scheduled runs

A run costs the cluster a read of every manifest and blob record and a few log
entries; one runs at a time, and a dry run proposes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import gc_runs
from proto import commands_pb2 as pb
from replica.api.cluster import require_operator
from replica.api.json_body import read_body
from replica.api.same_origin import refuse_cross_site
from replica.context import context
from replica.errors import InvalidInput
from replica.gc.schedule import check_cron

_DIGESTS_LISTED = 1000  # a dry run names at most this many (it counts them all)


async def _operator_only(request: Request) -> None:
    refuse_cross_site(request)
    await require_operator(request, "manage garbage collection")


def _when(ms: int) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def run_json(run: pb.CollectionRun) -> dict[str, Any]:
    finish = run.finish if run.HasField("finish") else None
    return {
        "epoch": run.epoch,
        "replica": run.replica_id,
        "started": _when(run.started_ms),
        "finished": _when(finish.at_ms) if finish else None,
        "outcome": finish.outcome if finish else "running",
        "time_limit_s": run.time_limit_s,
        "blobs_marked": finish.blobs_marked if finish else None,
        "blobs_removed": finish.blobs_collected if finish else None,
        "bytes_removed": finish.bytes_collected if finish else None,
        "manifests_scanned": finish.manifests_scanned if finish else None,
        "mark_ms": finish.mark_ms if finish else None,
        "tags_pruned": finish.tags_pruned if finish else None,
        "manifests_removed": finish.manifests_collected if finish else None,
        "sweeps": [
            {
                "replica": s.replica_id,
                "at": _when(s.at_ms),
                "files_deleted": s.files,
                "bytes_freed": s.bytes,
                "errors": s.errors,
                "last_error": s.last_error or None,
            }
            for s in run.sweeps
        ],
    }


async def status(request: Request) -> Response:
    await _operator_only(request)
    ctx = context(request)
    state = ctx.registry.state
    await ctx.registry.fresh()
    schedule = state.view(gc_runs.schedule)
    lease = state.view(gc_runs.lease)
    upcoming = ctx.gc_schedule.next_run()
    now_ms = datetime.now(UTC).timestamp() * 1000
    return JSONResponse(
        {
            "grace_s": ctx.collector.grace_s,
            "schedule": {
                "cron": schedule.cron or None,
                "time_limit_s": schedule.time_limit_s,
                "next_run": upcoming.isoformat() if upcoming else None,
                "untagged_days": schedule.untagged_after_s / 86_400 or None,
            },
            "collecting": lease.replica_id if lease and lease.until_ms > now_ms else None,
            "files_pending_here": ctx.sweeper.pending,
            "runs": [run_json(r) for r in state.view(gc_runs.runs)],
        }
    )


def _untagged_after_s(body: dict[str, Any], default: float) -> float:
    """untagged_days (a number, fractions allowed) as seconds."""
    value = body.get("untagged_days")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 100_000:
        raise InvalidInput(f"untagged_days is 0 (keep them) or a number of days, not {value!r}")
    return float(value) * 86_400


def _time_limit(body: dict[str, Any]) -> float:
    value = body.get("time_limit_s", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidInput(f"time_limit_s is 0 (none) or a number of seconds, not {value!r}")
    return float(value)


async def start_run(request: Request) -> Response:
    await _operator_only(request)
    body = await read_body(request)
    collector = context(request).collector
    after_s = _untagged_after_s(
        body, collector.registry.state.view(gc_runs.schedule).untagged_after_s
    )
    if body.get("dry_run"):
        marked, prunes, untagged = await collector.dry_run(after_s)
        return JSONResponse(
            {
                "dry_run": True,
                "tags_to_prune": prunes,
                "untagged_manifests": untagged,
                "blobs": len(marked.blobs),
                "bytes": marked.bytes,
                "manifests_scanned": marked.manifests,
                "mark_ms": int(marked.seconds * 1000),
                "digests": [b.digest for b in marked.blobs[:_DIGESTS_LISTED]],
            }
        )
    run = await collector.run(_time_limit(body), after_s)
    return JSONResponse(run_json(run))


async def set_schedule(request: Request) -> Response:
    await _operator_only(request)
    command = pb.SetCollectionSchedule()
    if request.method == "PUT":
        body = await read_body(request)
        cron = body.get("cron")
        if not isinstance(cron, str):
            raise InvalidInput("cron is required: six fields, seconds first ('0 0 0 * * *')")
        command.cron = check_cron(cron)
        command.time_limit_s = int(_time_limit(body))
        command.untagged_after_s = int(_untagged_after_s(body, 0))
    await context(request).registry.propose(pb.Command(set_collection_schedule=command))
    return await status(request)


ROUTES = [
    Route("/api/v0/gc", status, methods=["GET"]),
    Route("/api/v0/gc/runs", start_run, methods=["POST"]),
    Route("/api/v0/gc/schedule", set_schedule, methods=["PUT", "DELETE"]),
]
