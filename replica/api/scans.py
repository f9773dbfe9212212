"""Vulnerability scanning in the management API.

PUT    /api/v0/scan/database/{name}   administrators: an OSV zip (osv.dev's per-ecosystem
                                      all.zip), stored as a blob on every replica; a new
                                      database version, and every image is rescanned
DELETE /api/v0/scan/database/{name}   administrators: drop that archive
GET    /api/v0/scan/database          anyone signed in: version, archives, age
GET    /api/v0/repositories/{ns}/{repo}/tags/{tag}/scan   its readers: the report
                                      (?packages=1: and the image's packages)
POST   /api/v0/repositories/{ns}/{repo}/tags/{tag}/scan   its writers: scan again now
POST   /api/v0/repositories/{ns}/{repo}/scan              its writers: every tag again

An upload is read as it arrives (never held in memory), at most 4 GiB, and checked to
be OSV before anything is recorded.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus import scans
from proto import commands_pb2 as pb
from replica.api.accounts import Context, endpoint
from replica.api.cluster import require_operator
from replica.auth import permissions
from replica.blobs.store import FileBlobWriter, copy_in
from replica.context import context
from replica.errors import Denied, InvalidInput, NotFound, SizeInvalid
from replica.names import check_name, is_tag
from replica.scan.osv import SEVERITIES, OsvIndex
from replica.scan.scanner import Scanner, decode_findings

MAX_ARCHIVE = 4 << 30
STALE_AFTER_DAYS = 7
_ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._ -]{0,63}")


def _name(request: Request) -> str:
    name = request.path_params["name"]
    if not _ARCHIVE_NAME.fullmatch(name):
        raise InvalidInput("an archive is named by its ecosystem, as Debian or PyPI")
    return str(name)


async def put_archive(request: Request) -> Response:
    await require_operator(request, "change the vulnerability database")
    name = _name(request)
    registry = context(request).registry
    replicator = registry.replication
    store = registry.store
    seen = replicator.collections_seen()
    # Checked in a local file first (a zip is read by seeking), then stored.
    writer = FileBlobWriter(os.path.join(store.root, f"archive-{secrets.token_hex(8)}"))
    try:
        async for chunk in request.stream():
            if writer.size + len(chunk) > MAX_ARCHIVE:
                raise SizeInvalid(f"an archive is at most {MAX_ARCHIVE >> 30} GiB")
            await asyncio.to_thread(writer.write, chunk)
        digest = writer.digest("sha256")

        def check() -> Any:
            with tempfile.TemporaryDirectory() as scratch, open(writer.path, "rb") as f:
                index = OsvIndex(scratch)
                try:
                    return index.build([f])
                finally:
                    index.close()

        try:
            report = await asyncio.to_thread(check)
        except Exception as e:
            raise InvalidInput(f"not an OSV zip: {e}") from None
        if not report.records:
            raise InvalidInput("the zip holds no OSV record")
        size = await asyncio.to_thread(copy_in, store, writer.path, digest)
    finally:
        writer.discard()
    peers = await replicator.replicate(digest, size)
    archive = pb.ScanArchive(
        name=name,
        digest=digest,
        size=size,
        records=report.records,
        newest_modified=report.newest_modified,
    )
    command = pb.SetScanArchive(archive=archive, at_ms=int(time.time() * 1000))
    command.copies[replicator.holder_id] = seen
    for replica, copy_seen in peers.items():
        command.copies[replica] = copy_seen
    result = await registry.propose_result(pb.Command(set_scan_archive=command))
    return JSONResponse(
        {
            "name": name,
            "digest": digest,
            "size": size,
            "records": report.records,
            "withdrawn": report.withdrawn,
            "ecosystems": report.ecosystems,
            "version": int(result.message),
        },
        status_code=201,
    )


async def delete_archive(request: Request) -> Response:
    await require_operator(request, "change the vulnerability database")
    command = pb.SetScanArchive(
        archive=pb.ScanArchive(name=_name(request)), at_ms=int(time.time() * 1000)
    )
    await context(request).registry.propose(pb.Command(set_scan_archive=command))
    return Response(status_code=204)


def database_json(database: pb.ScanDatabase) -> dict[str, Any]:
    newest = max((a.newest_modified for a in database.archives), default="")
    age_days = None
    if newest:
        try:
            then = datetime.fromisoformat(newest.replace("Z", "+00:00"))
            age_days = round((datetime.now(UTC) - then).total_seconds() / 86400, 1)
        except ValueError:
            age_days = None
    return {
        "version": database.version,
        "updated_ms": database.updated_ms,
        "archives": [
            {"name": a.name, "digest": a.digest, "size": a.size, "records": a.records}
            for a in database.archives
        ],
        "newest_record": newest or None,
        "age_days": age_days,
        "warning": (
            f"the vulnerability database is {age_days} days old: import a newer one"
            if age_days is not None and age_days > STALE_AFTER_DAYS
            else None
        ),
    }


async def get_database(request: Request, ctx: Context) -> Response:
    ctx.signed_in()
    return JSONResponse(database_json(ctx.view(scans.database)))


def _tag(request: Request) -> tuple[str, str]:
    p = request.path_params
    name = check_name(f"{p['namespace']}/{p['repo']}")
    if not is_tag(p["tag"]):
        raise InvalidInput("not a tag")
    return name, str(p["tag"])


def report_json(
    report: pb.PutScanReport | None, digest: str, scanner: Scanner, version: int
) -> dict[str, Any]:
    if report is None:
        status = "queued" if scanner.waiting(digest) else "not scanned"
        return {"digest": digest, "status": status, "findings": []}
    return {
        "digest": digest,
        "status": "done" if report.db_version == version else "outdated",
        "db_version": report.db_version,
        "scanned_at_ms": report.at_ms,
        "scanned_by": report.scanned_by,
        "summary": {s: int(report.summary.get(s, 0)) for s in SEVERITIES},
        "error": report.error or None,
        "findings": decode_findings(report),
    }


async def get_report(request: Request, ctx: Context) -> Response:
    name, tag = _tag(request)
    if "pull" not in ctx.view(permissions.actions, ctx.caller, name):
        raise NotFound(f"no repository {name} that you may read")
    digest = ctx.registry.state.resolve(name, tag)
    if digest is None:
        raise NotFound(f"{name} has no tag {tag}")
    scanner = context(request).scanner
    version = ctx.view(scans.database).version
    body = report_json(ctx.view(scans.report, digest), digest, scanner, version)
    if request.query_params.get("packages"):
        body["packages"] = await asyncio.to_thread(scanner.packages, name, digest)
    return JSONResponse(body)


async def rescan(request: Request, ctx: Context) -> Response:
    name, tag = _tag(request)
    if "push" not in ctx.view(permissions.actions, ctx.signed_in(), name):
        raise Denied(f"only those who may push to {name} may rescan it")
    digest = ctx.registry.state.resolve(name, tag)
    if digest is None:
        raise NotFound(f"{name} has no tag {tag}")
    context(request).scanner.enqueue(name, digest)
    return JSONResponse({"digest": digest, "status": "queued"}, status_code=202)


async def rescan_repository(request: Request, ctx: Context) -> Response:
    p = request.path_params
    name = check_name(f"{p['namespace']}/{p['repo']}")
    if "push" not in ctx.view(permissions.actions, ctx.signed_in(), name):
        raise Denied(f"only those who may push to {name} may rescan it")
    state = ctx.registry.state
    digests = {d for t in state.tags(name, "", 10_000) if (d := state.resolve(name, t))}
    for digest in sorted(digests):
        context(request).scanner.enqueue(name, digest)
    return JSONResponse({"queued": len(digests)}, status_code=202)


ROUTES = [
    Route(
        "/api/v0/repositories/{namespace}/{repo}/scan",
        endpoint(rescan_repository),
        methods=["POST"],
    ),
    Route("/api/v0/scan/database", endpoint(get_database), methods=["GET"]),
    Route("/api/v0/scan/database/{name}", put_archive, methods=["PUT"]),
    Route("/api/v0/scan/database/{name}", delete_archive, methods=["DELETE"]),
    Route(
        "/api/v0/repositories/{namespace}/{repo}/tags/{tag}/scan",
        endpoint(get_report),
        methods=["GET"],
    ),
    Route(
        "/api/v0/repositories/{namespace}/{repo}/tags/{tag}/scan",
        endpoint(rescan),
        methods=["POST"],
    ),
]
