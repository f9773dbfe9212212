"""What the pages show, read from the state with the same queries and permission
checks as the management API (nothing here changes anything: the pages' forms call
the API)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consensus import accounts, caches, gc_runs, policies, scans
from proto import commands_pb2 as pb
from replica.api.scans import database_json
from replica.auth import permissions
from replica.context import ReplicaContext
from replica.quotas import human
from replica.scan.osv import SEVERITIES
from replica.trust.status import referrer_signatures, signers_of, stale

PAGE = 50  # repositories per page
MAX_TAGS = 1000  # tags shown on a repository page

_INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def when(ms: int, seconds: bool = False) -> str:
    if not ms:
        return "—"
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M UTC"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(shape)


def readable(ctx: ReplicaContext, user: str | None, q: str, page: int) -> tuple[list[str], bool]:
    """One page of the repositories `user` may pull whose names contain `q`, and
    whether more follow."""

    def visible(txn: Any, name: str) -> bool:
        return (not q or q in name) and "pull" in permissions.actions(txn, user, name)

    skip = (page - 1) * PAGE
    names = ctx.registry.state.repositories("", skip + PAGE + 1, visible)
    return names[skip : skip + PAGE], len(names) > skip + PAGE


def repository_rows(ctx: ReplicaContext, names: list[str]) -> list[dict[str, Any]]:
    state = ctx.registry.state
    rows = []
    for name in names:
        settings = state.view(accounts.repository, name)
        rows.append(
            {
                "name": name,
                "visibility": settings.visibility if settings else "private",
                "tags": len(state.tags(name, "", MAX_TAGS)),
            }
        )
    return rows


@dataclass
class TagRow:
    tag: str
    digest: str
    kind: str
    size: str
    pushed: str
    pushed_by: str
    platforms: list[str]
    immutable: bool
    scan: str  # "critical 1, high 2", "clean", "not scanned"
    scan_level: str  # bad, warn, ok, or ""
    signed_by: list[str]  # the TUF roles whose valid signatures name this digest
    signature_stale: bool  # signed, but for another digest
    other_signatures: list[str]  # cosign, notation… (OCI referrers, not verified)


def _describe(record: pb.ManifestRecord) -> tuple[str, int | None, list[str]]:
    try:
        doc = json.loads(record.body)
    except ValueError:
        return record.media_type, None, []
    if record.media_type in _INDEXES:
        platforms = []
        for child in doc.get("manifests") or []:
            p = child.get("platform") or {}
            if p.get("os"):
                platforms.append(
                    "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
                )
        return "index", None, platforms
    parts = [doc.get("config") or {}] + list(doc.get("layers") or [])
    size = sum(int(p.get("size") or 0) for p in parts if isinstance(p, dict))
    kind = (
        "image"
        if (doc.get("config") or {}).get("mediaType", "").endswith("config.v1+json")
        else "artifact"
    )
    return kind, size, []


def tag_rows(ctx: ReplicaContext, name: str) -> tuple[list[TagRow], bool]:
    state = ctx.registry.state
    tags = state.tags(name, "", MAX_TAGS + 1)
    rules = state.view(policies.policy, name)
    signatures = ctx.signed_tags.signatures(name)
    rows = []
    for tag in tags[:MAX_TAGS]:
        digest = state.resolve(name, tag)
        record = state.view(_record, name, digest) if digest else None
        if digest is None or record is None:
            continue
        kind, size, platforms = _describe(record)
        rows.append(
            TagRow(
                tag=tag,
                digest=digest,
                kind=kind,
                size=human(size) if size is not None else "—",
                pushed=when(record.pushed_at_ms),
                pushed_by=record.pushed_by,
                platforms=platforms,
                immutable=policies.covers(rules, tag),
                **_scan_summary(state.view(scans.report, digest)),
                signed_by=signers_of(signatures.get(tag, []), digest),
                signature_stale=stale(signatures.get(tag, []), digest),
                other_signatures=sorted(
                    {s["kind"] for s in referrer_signatures(state, name, digest)}
                ),
            )
        )
    return rows, len(tags) > MAX_TAGS


def _scan_summary(report: pb.PutScanReport | None) -> dict[str, str]:
    if report is None:
        return {"scan": "not scanned", "scan_level": ""}
    counts = [(s, int(report.summary.get(s, 0))) for s in SEVERITIES]
    found = [f"{n} {s}" for s, n in counts if n]
    if not found:
        return {"scan": "clean", "scan_level": "ok"}
    level = "bad" if counts[0][1] or counts[1][1] else "warn"
    return {"scan": ", ".join(found), "scan_level": level}


def _record(txn: Any, name: str, digest: str) -> pb.ManifestRecord | None:
    raw = txn.get(accounts.key(b"M", name, digest))
    return pb.ManifestRecord.FromString(bytes(raw)) if raw else None


def namespaces_for(ctx: ReplicaContext, user: str) -> list[str]:
    """Where `user` may create repositories: their own namespace and the
    organizations they own (every organization for administrators)."""
    state = ctx.registry.state
    owned = [
        a.name
        for a in state.view(accounts.accounts)
        if a.is_org and state.view(permissions.manages_org, user, a.name)
    ]
    return [user, *sorted(owned)]


def attention(
    ctx: ReplicaContext, views: list[tuple[Any, dict[str, Any]]]
) -> list[tuple[str, str, str]]:
    """(level, what, link) of everything an operator should look at now."""
    found: list[tuple[str, str, str]] = []
    registry = ctx.registry
    status = registry.raft.status()
    if not status.get("has_quorum") or registry.raft.leader_address() is None:
        found.append(
            (
                "bad",
                "The cluster has no quorum: pushes are refused until a majority is back",
                "/cluster",
            )
        )
    commit = max((v.get("commit_index", 0) for _, v in views if v.get("reachable")), default=0)
    for member, view in views:
        if not view.get("reachable"):
            found.append(("bad", f"Replica {member.replica_id} does not answer", "/cluster"))
        elif (view.get("blob_store") or {}).get("reachable") is False:
            found.append(
                ("bad", f"Replica {member.replica_id} cannot reach the object store", "/cluster")
            )
        elif commit - int(view.get("applied_index", 0)) > 1000:
            found.append(
                (
                    "warn",
                    f"Replica {member.replica_id} lags "
                    f"{commit - int(view['applied_index'])} entries behind",
                    "/cluster",
                )
            )
        elif view.get("blobs_missing"):
            found.append(
                (
                    "warn",
                    f"Replica {member.replica_id} is still copying {view['blobs_missing']} blobs",
                    "/cluster",
                )
            )
    live = len([1 for _, v in views if v.get("reachable")])
    if views and live * 2 <= len(views) + 1 and len(views) > 1 and live < len(views):
        found.append(("bad", f"Quorum at risk: {live} of {len(views)} replicas answer", "/cluster"))
    for cache in registry.state.view(caches.caches):
        if ctx.cache_health.is_down(cache.name):
            found.append(("warn", f"Cache {cache.name} is down", "/cluster"))
    usage = shutil.disk_usage(registry.store.root)
    if usage.used / usage.total > 0.9:
        found.append(
            (
                "bad",
                f"This replica's disk is {100 * usage.used / usage.total:.0f}% full",
                "/settings",
            )
        )
    database = database_json(registry.state.view(scans.database))
    if not database["version"]:
        found.append(("warn", "No vulnerability database: run qreg scan db import FILE.zip", ""))
    elif database["warning"]:
        found.append(("warn", str(database["warning"]).capitalize(), ""))
    if not registry.state.view(gc_runs.schedule).cron:
        found.append(
            (
                "warn",
                "Garbage collection is not scheduled: deleted images still take disk space",
                "/settings",
            )
        )
    return found


def counts(ctx: ReplicaContext) -> dict[str, Any]:
    state = ctx.registry.state

    def count(txn: Any) -> dict[str, Any]:
        tags = sum(1 for _ in accounts.scan(txn, b"t\0"))
        stored = sum(pb.BlobRecord.FromString(v).size for _, v in accounts.scan(txn, b"b\0"))
        repositories = sum(1 for _ in accounts.scan(txn, b"r\0"))
        return {"tags": tags, "storage": human(stored), "repositories": repositories}

    found = state.view(count)
    found["users"] = sum(1 for a in state.view(accounts.accounts) if not a.is_org)
    return found


def recent_pushes(ctx: ReplicaContext, user: str, limit: int = 10) -> list[dict[str, Any]]:
    def scan(txn: Any) -> list[tuple[int, str, str, str]]:
        latest: list[tuple[int, str, str, str]] = []
        for k, raw in accounts.scan(txn, b"t\0"):
            repository, _, tag = k[2:].decode().rpartition("\0")
            found = txn.get(accounts.key(b"M", repository, raw.decode()))
            record = pb.ManifestRecord.FromString(bytes(found)) if found else pb.ManifestRecord()
            latest.append((record.pushed_at_ms, repository, tag, record.pushed_by))
        latest.sort(reverse=True)
        return [r for r in latest if "pull" in permissions.actions(txn, user, r[1])][:limit]

    return [
        {"repository": r, "tag": t, "pushed": when(p), "by": by}
        for p, r, t, by in ctx.registry.state.view(scan)
    ]


def gc_settings(ctx: ReplicaContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state = ctx.registry.state
    schedule = state.view(gc_runs.schedule)
    upcoming = ctx.gc_schedule.next_run()
    runs = []
    for run in state.view(gc_runs.runs, 10):
        finish = run.finish if run.HasField("finish") else None
        runs.append(
            {
                "epoch": run.epoch,
                "replica": run.replica_id,
                "started": when(run.started_ms),
                "outcome": finish.outcome if finish else "running",
                "blobs_removed": finish.blobs_collected if finish else None,
                "bytes": human(finish.bytes_collected) if finish else "—",
            }
        )
    settings = {
        "cron": schedule.cron,
        "time_limit_s": schedule.time_limit_s,
        "untagged_days": schedule.untagged_after_s / 86_400,
        "next_run": upcoming.strftime("%Y-%m-%d %H:%M:%S UTC") if upcoming else None,
    }
    return settings, runs
