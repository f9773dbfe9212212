"""Vulnerability scanning's facts in the state: each layer's inventory (so a database
update rescans without reading layers), the vulnerability database (its archives,
stored as blobs, and a version that every change advances), and each manifest's
latest report.

Key layout:

    si\\0<layer digest>     -> inventory (zlib JSON, replica/scan/layers.py)
    sd                      -> ScanDatabase
    sr\\0<manifest digest>  -> PutScanReport (the latest)
"""

from __future__ import annotations

from typing import Any

import lmdb

from consensus.accounts import key, scan
from proto import commands_pb2 as pb

_DATABASE = b"sd"
_SEP = b"\0"


def inventory(txn: lmdb.Transaction, layer: str) -> bytes | None:
    raw = txn.get(key(b"si", layer))
    return bytes(raw) if raw is not None else None


def database(txn: lmdb.Transaction) -> pb.ScanDatabase:
    raw = txn.get(_DATABASE)
    return pb.ScanDatabase.FromString(bytes(raw)) if raw else pb.ScanDatabase()


def report(txn: lmdb.Transaction, manifest: str) -> pb.PutScanReport | None:
    raw = txn.get(key(b"sr", manifest))
    return pb.PutScanReport.FromString(bytes(raw)) if raw else None


def unscanned(txn: lmdb.Transaction, version: int) -> list[tuple[str, str, int]]:
    """(repository, manifest digest, pushed at ms) of manifests with no report for
    database `version`, one repository per manifest."""
    prefix = b"M" + _SEP
    seen: set[str] = set()
    found: list[tuple[str, str, int]] = []
    for k, value in scan(txn, prefix):
        repository, _, digest = k[len(prefix) :].decode().rpartition("\0")
        if digest in seen:
            continue
        seen.add(digest)
        current = report(txn, digest)
        if current is None or current.db_version != version:
            pushed = pb.ManifestRecord.FromString(value).pushed_at_ms
            found.append((repository, digest, pushed))
    return found


def _put_inventory(txn: lmdb.Transaction, c: pb.PutInventory) -> pb.Result:
    txn.put(key(b"si", c.layer), c.data)
    return pb.Result()


def _set_archive(txn: lmdb.Transaction, c: pb.SetScanArchive) -> pb.Result:
    current = database(txn)
    kept: list[pb.ScanArchive] = [a for a in current.archives if a.name != c.archive.name]
    if c.archive.digest:
        kept.append(c.archive)
    elif len(kept) == len(current.archives):
        return pb.Result(error_code="NOT_FOUND", message=f"no archive named {c.archive.name}")
    kept.sort(key=_name)
    updated = pb.ScanDatabase(version=current.version + 1, updated_ms=c.at_ms)
    updated.archives.extend(kept)
    txn.put(_DATABASE, updated.SerializeToString())
    return pb.Result(message=str(updated.version))


def _name(archive: pb.ScanArchive) -> str:
    return archive.name


def _put_report(txn: lmdb.Transaction, c: pb.PutScanReport) -> pb.Result:
    current = report(txn, c.manifest)
    if current is not None and current.db_version > c.db_version:
        return pb.Result()  # a newer database's report is already there
    txn.put(key(b"sr", c.manifest), c.SerializeToString())
    return pb.Result()


def referenced_blobs(txn: lmdb.Transaction) -> list[str]:
    """The database's archives: garbage collection keeps them."""
    return [a.digest for a in database(txn).archives]


APPLY: dict[str, Any] = {
    "put_inventory": _put_inventory,
    "set_scan_archive": _set_archive,
    "put_scan_report": _put_report,
}
