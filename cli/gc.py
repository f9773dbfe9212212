"""`qreg gc`: garbage collection (run it now, see how the runs went, schedule it)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from cli import output
from cli import session as sessions
from cli.client import ApiError, ManagementClient
from cli.cluster_client import ClusterClient, ClusterUnreachable, error_of
from cli.output import fail, table

Call = Callable[[str, str, "dict[str, Any] | None"], Any]

_EPILOG = """\
examples:
  qreg gc run --dry-run                  what would go, removing nothing
  qreg gc run --time-limit 1800          collect now, stop after 30 minutes
  qreg gc status                         the schedule and the last runs
  qreg gc schedule "0 0 0 * * *"         every day at midnight (UTC)
  qreg gc schedule "0 30 2 * * 0" --time-limit 3600
  qreg gc schedule --off

Signed in with `qreg login` as an administrator, or, on a replica's host, with the
cluster's own credential: --config ./data/replica-0/replica.toml.

A blob goes when no manifest in any repository references it and it was last
linked more than the grace period ago ([gc] grace_s, default 3600 s). Delete tags,
manifests or repositories first (qreg repo remove, DELETE /v2/NAME/manifests/REF);
then every replica deletes its files of the collected blobs.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "gc",
        help="garbage collection: free the disk space of deleted images",
        description="Garbage collection removes blobs that no manifest references any more, "
        "online: pushes and pulls go on meanwhile, and a push racing a collection either "
        "keeps its blobs or is told to upload them again.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="a replica's config: use the cluster's own credential")
    sub = p.add_subparsers(dest="gc_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="collect now and wait for the result")
    run.add_argument("--dry-run", action="store_true", help="only report what would go")
    run.add_argument(
        "--time-limit", type=float, default=0, metavar="SECONDS", help="stop after this long"
    )
    run.add_argument(
        "--untagged-days",
        type=float,
        metavar="DAYS",
        help="also remove manifests no tag or index references, pushed longer ago "
        "(default: the schedule's setting; 0: keep them)",
    )
    run.set_defaults(func=_command(_run))
    status = sub.add_parser("status", help="the schedule, and each run with each replica's sweep")
    status.set_defaults(func=_command(_status))
    schedule = sub.add_parser(
        "schedule",
        help="run on a schedule (cron with seconds first, UTC)",
        description="Six fields, seconds first, as DTR: 'SEC MIN HOUR DAY MONTH WEEKDAY'.",
    )
    schedule.add_argument("cron", nargs="?", help="for example '0 0 0 * * *' (midnight UTC)")
    schedule.add_argument("--time-limit", type=float, default=0, metavar="SECONDS")
    schedule.add_argument(
        "--untagged-days",
        type=float,
        default=0,
        metavar="DAYS",
        help="each run also removes untagged manifests older than this (default 0: keeps them)",
    )
    schedule.add_argument("--off", action="store_true", help="no more scheduled runs")
    schedule.set_defaults(func=_command(_schedule))


def _command(action: Callable[[Call, argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        try:
            if args.config:
                with ClusterClient(args.config, timeout=None) as cluster:
                    return action(_cluster_call(cluster), args)
            with ManagementClient.signed_in(timeout=None) as client:  # a run waits
                return action(client.call, args)
        except (sessions.NotSignedIn, ApiError, ClusterUnreachable, OSError) as e:
            return fail("gc", str(e))

    return run


def _cluster_call(cluster: ClusterClient) -> Call:
    def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = cluster.request(method, "/api/v0" + path, json=body)
        if r.status_code >= 400:
            raise ApiError(error_of(r))
        return r.json()

    return call


def _waiting(what: str) -> Callable[[], None]:
    """A ticking line on stderr while a long call waits; returns its stop."""
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        frames = "|/-\\"
        n = 0
        while not done.wait(0.2):
            elapsed = time.monotonic() - started
            print(f"\r{frames[n % 4]} {what} {elapsed:5.1f} s", end="", file=sys.stderr)
            n += 1
        print("\r" + " " * (len(what) + 12) + "\r", end="", file=sys.stderr)

    thread = threading.Thread(target=tick, daemon=True)
    if sys.stderr.isatty():
        thread.start()

    def stop() -> None:
        done.set()
        if thread.is_alive():
            thread.join()

    return stop


def _run(call: Call, args: argparse.Namespace) -> int:
    stop = _waiting("marking" if args.dry_run else "collecting garbage")
    try:
        body: dict[str, Any] = {"dry_run": args.dry_run, "time_limit_s": args.time_limit}
        if args.untagged_days is not None:
            body["untagged_days"] = args.untagged_days
        result = call("POST", "/gc/runs", body)
    finally:
        stop()
    if args.dry_run:
        for repository, tags in result["tags_to_prune"].items():
            print(f"retention would prune {repository}: {', '.join(tags)}")
        for repository, digests in result["untagged_manifests"].items():
            print(f"would remove {len(digests)} untagged manifests of {repository}")
        print(
            f"would remove {result['blobs']} blobs ({output.size(result['bytes'])}); "
            f"{result['manifests_scanned']} manifests scanned in {result['mark_ms']} ms"
        )
        for digest in result["digests"]:
            print(f"  {digest}")
        if len(result["digests"]) < result["blobs"]:
            print(f"  ... and {result['blobs'] - len(result['digests'])} more")
        return 0
    if result["tags_pruned"] or result["manifests_removed"]:
        print(
            f"retention pruned {result['tags_pruned']} tags; "
            f"{result['manifests_removed']} untagged manifests removed"
        )
    print(
        f"collection {result['epoch']} {result['outcome']}: removed {result['blobs_removed']} "
        f"of {result['blobs_marked']} unreferenced blobs ({output.size(result['bytes_removed'])}); "
        "every replica now deletes its files (qreg gc status shows them)"
    )
    return 0


def _status(call: Call, args: argparse.Namespace) -> int:
    status = call("GET", "/gc", None)
    schedule = status["schedule"]
    if schedule["cron"]:
        limit = f", time limit {schedule['time_limit_s']} s" if schedule["time_limit_s"] else ""
        print(f"schedule: {schedule['cron']} (UTC{limit}); next run {schedule['next_run']}")
    else:
        print("schedule: none (qreg gc schedule '0 0 0 * * *' runs it daily at midnight)")
    print(f"grace period: {status['grace_s']:.0f} s")
    if status["collecting"]:
        print(f"collecting now: {status['collecting']}")
    if not status["runs"]:
        print("no collection has run yet")
        return 0
    rows = []
    for run in status["runs"]:
        rows.append(
            [
                run["epoch"],
                run["replica"],
                run["started"],
                run["outcome"],
                run["blobs_removed"],
                output.size(run["bytes_removed"]),
                ", ".join(
                    f"{s['replica']} {s['files_deleted']} files {output.size(s['bytes_freed'])}"
                    + (f" {s['errors']} errors" if s["errors"] else "")
                    for s in run["sweeps"]
                )
                or "-",
            ]
        )
    print(table(["run", "by", "started", "outcome", "blobs", "bytes", "deleted per replica"], rows))
    return 0


def _schedule(call: Call, args: argparse.Namespace) -> int:
    if args.off:
        call("DELETE", "/gc/schedule", None)
        print("garbage collection is no longer scheduled")
        return 0
    if not args.cron:
        return fail("gc schedule", "give a schedule ('0 0 0 * * *') or --off")
    status = call(
        "PUT",
        "/gc/schedule",
        {
            "cron": args.cron,
            "time_limit_s": args.time_limit,
            "untagged_days": args.untagged_days,
        },
    )
    print(f"scheduled: {status['schedule']['cron']}; next run {status['schedule']['next_run']}")
    return 0
