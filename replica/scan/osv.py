"""An offline OSV database: the zips osv.dev publishes per ecosystem (Debian, Alpine,
PyPI, npm, Go, …), read into an index keyed by (ecosystem, package name) of what each
record says is affected, kept in this replica's own LMDB (the zips themselves are
blobs, on every replica; the index is rebuilt from them).

Ecosystems are kept with their release ("Debian:12", "Alpine:v3.19") where OSV gives
one: an advisory for Debian 11 does not apply to a Debian 12 image.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from typing import IO, Any

import lmdb
from cvss import CVSS3  # type: ignore[import-untyped]

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
_MAX_RECORD = 4 << 20


@dataclass
class ImportReport:
    records: int = 0
    withdrawn: int = 0
    skipped: int = 0  # not JSON, or not OSV
    ecosystems: dict[str, int] = field(default_factory=dict)
    newest_modified: str = ""


def severity(record: dict[str, Any]) -> str:
    """critical, high, medium, low or unknown: the record's own label, else its CVSS v3."""
    specific = record.get("database_specific") or {}
    label = str(specific.get("severity") or "").lower()
    if label == "moderate":
        label = "medium"
    if label in SEVERITIES:
        return label
    for entry in record.get("severity") or []:
        score = str(entry.get("score", ""))
        if entry.get("type") == "CVSS_V3" and score.startswith("CVSS:3"):
            try:
                return str(CVSS3(score).severities()[0]).lower()
            except Exception:
                continue
    return "unknown"


def _affected(record: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(ecosystem, name, what is affected) of each affected package of a record."""
    found = []
    for affected in record.get("affected") or []:
        package = affected.get("package") or {}
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str):
            continue
        ranges = [
            {"type": r.get("type"), "events": r.get("events") or []}
            for r in affected.get("ranges") or []
            if r.get("type") in ("ECOSYSTEM", "SEMVER")
        ]
        found.append(
            (ecosystem, name, {"versions": list(affected.get("versions") or []), "ranges": ranges})
        )
    return found


class OsvIndex:
    """The index of one database: LMDB under `path`, keyed by "ecosystem\\0name"."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(path, exist_ok=True)
        self._env = lmdb.open(path, map_size=1 << 34, sync=False, metasync=False, max_readers=256)
        # Packages recur across images: their entries, decoded (read-only once built).
        self._cache: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def close(self) -> None:
        self._env.close()

    def lookup(self, ecosystem: str, name: str) -> list[dict[str, Any]]:
        key = (ecosystem, name)
        cached = self._cache.get(key)
        if cached is None:
            with self._env.begin() as txn:
                raw = txn.get(f"{ecosystem}\0{name}".encode())
            cached = list(json.loads(raw)) if raw else []
            if len(self._cache) >= 20_000:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def build(self, archives: list[IO[bytes]]) -> ImportReport:
        """Index every record of these OSV zips (replacing what was indexed)."""
        report = ImportReport()
        entries: dict[str, list[dict[str, Any]]] = {}
        for archive in archives:
            with zipfile.ZipFile(archive) as zipped:
                for info in zipped.infolist():
                    if not info.filename.endswith(".json") or info.file_size > _MAX_RECORD:
                        continue
                    try:
                        record = json.loads(zipped.read(info))
                    except ValueError:
                        report.skipped += 1
                        continue
                    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                        report.skipped += 1
                        continue
                    if record.get("withdrawn"):
                        report.withdrawn += 1
                        continue
                    report.records += 1
                    report.newest_modified = max(
                        report.newest_modified, str(record.get("modified", ""))
                    )
                    summary = {
                        "id": record["id"],
                        "aliases": [a for a in record.get("aliases") or [] if isinstance(a, str)],
                        "severity": severity(record),
                        "summary": str(record.get("summary") or "")[:300],
                    }
                    for ecosystem, name, affected in _affected(record):
                        report.ecosystems[ecosystem] = report.ecosystems.get(ecosystem, 0) + 1
                        entries.setdefault(f"{ecosystem}\0{name}", []).append(
                            {**summary, **affected}
                        )
        self._cache.clear()
        with self._env.begin(write=True) as txn:
            txn.drop(self._env.open_db(), delete=False)
            for key, value in entries.items():
                txn.put(key.encode(), json.dumps(value, separators=(",", ":")).encode())
        return report

    @staticmethod
    def remove(path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)
