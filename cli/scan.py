"""`qreg scan`: the vulnerability database and scan reports."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any

from cli.client import ManagementClient, signed_in
from cli.output import table

_EPILOG = """\
examples:
  qreg scan db import Debian.zip PyPI.zip     osv.dev's all.zip of each ecosystem, renamed
  qreg scan db import all.zip --name Alpine
  qreg scan db status
  qreg scan show engineering/barca:lona       the findings, worst first
  qreg scan rescan engineering/barca:lona

Every pushed image is scanned; importing a newer database rescans every image from
the package inventories kept in the cluster, without reading layers again.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scan",
        help="vulnerability scanning: import the database, see reports",
        description="Images are inventoried when pushed and matched against an offline "
        "OSV database (https://osv.dev: one all.zip per ecosystem).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="scan_command", metavar="ACTION", required=True)
    db = sub.add_parser("db", help="the vulnerability database")
    dbs = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    imp = dbs.add_parser("import", help="import OSV zips (administrators)")
    imp.add_argument("files", nargs="+", metavar="FILE.zip")
    imp.add_argument("--name", help="the ecosystem, when the file is all.zip (Debian, PyPI…)")
    imp.set_defaults(func=signed_in("scan db import", _import))
    status = dbs.add_parser("status", help="version, archives and age of the database")
    status.set_defaults(func=signed_in("scan db status", _status))
    show = sub.add_parser("show", help="a tag's findings")
    show.add_argument("reference", metavar="NAME:TAG")
    show.set_defaults(func=signed_in("scan show", _show))
    again = sub.add_parser("rescan", help="scan a tag (or every tag of a repository) again now")
    again.add_argument("reference", metavar="NAME:TAG|NAME")
    again.set_defaults(func=signed_in("scan rescan", _rescan))


def _archive_name(path: str, given: str | None) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    if given:
        return given
    if stem.lower() == "all":
        raise ValueError(f"{path}: say which ecosystem it is with --name (Debian, PyPI, npm…)")
    return stem


def _chunks(path: str) -> Iterator[bytes]:
    total = os.path.getsize(path)
    sent = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sent += len(chunk)
            if sys.stderr.isatty():
                print(f"\r{path}: {100 * sent / max(total, 1):5.1f}%", end="", file=sys.stderr)
            yield chunk
    if sys.stderr.isatty():
        print(file=sys.stderr)


def _import(client: ManagementClient, args: argparse.Namespace) -> int:
    if args.name and len(args.files) > 1:
        raise ValueError("--name names one file")
    for path in args.files:
        name = _archive_name(path, args.name)
        answer = client.upload(f"/scan/database/{name}", _chunks(path), "application/zip")
        print(
            f"imported {name}: {answer['records']} records ({answer['withdrawn']} withdrawn "
            f"skipped); database version {answer['version']}: every image is rescanned"
        )
    return 0


def _status(client: ManagementClient, args: argparse.Namespace) -> int:
    db = client.call("GET", "/scan/database")
    if not db["version"]:
        print("no vulnerability database yet: qreg scan db import FILE.zip")
        return 0
    print(
        f"database version {db['version']}, newest record {db['newest_record']} "
        f"({db['age_days']} days old)"
    )
    if db["warning"]:
        print(f"warning: {db['warning']}")
    print(
        table(
            ["archive", "records", "size"],
            [[a["name"], a["records"], a["size"]] for a in db["archives"]],
        )
    )
    return 0


def _split(reference: str) -> tuple[str, str]:
    name, _, tag = reference.rpartition(":")
    if not name or "/" not in name:
        raise ValueError("give NAMESPACE/NAME:TAG")
    return name, tag


def _show(client: ManagementClient, args: argparse.Namespace) -> int:
    name, tag = _split(args.reference)
    report = client.call("GET", f"/repositories/{name}/tags/{tag}/scan")
    if report["status"] in ("queued", "not scanned"):
        print(f"{args.reference}: {report['status']} yet")
        return 0
    summary = ", ".join(f"{n} {s}" for s, n in report["summary"].items() if n) or "no findings"
    print(f"{args.reference} ({report['digest'][:19]}): {summary} [{report['status']}]")
    if report.get("error"):
        print(f"note: {report['error']}")
    rows = [
        [
            f["severity"],
            f["vulnerability"],
            ", ".join(f.get("aliases") or []) or None,
            f["package"],
            f["version"],
            f["fixed"] or None,
            f.get("platform"),
        ]
        for f in report["findings"]
    ]
    if rows:
        print(
            table(
                [
                    "severity",
                    "vulnerability",
                    "aliases",
                    "package",
                    "installed",
                    "fixed in",
                    "platform",
                ],
                rows,
            )
        )
    return 0


def _rescan(client: ManagementClient, args: argparse.Namespace) -> int:
    if ":" not in args.reference:
        answer = client.call("POST", f"/repositories/{args.reference}/scan")
        print(f"{args.reference}: {answer['queued']} images queued")
        return 0
    name, tag = _split(args.reference)
    client.call("POST", f"/repositories/{name}/tags/{tag}/scan")
    print(f"{args.reference}: queued; see it with qreg scan show {args.reference}")
    return 0
