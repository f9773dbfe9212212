"""`qreg upgrade-check`: whether every replica can apply every command the cluster
writes, before and during a rolling upgrade."""

from __future__ import annotations

import argparse
import os
import ssl
from typing import Any

import httpx

from cli import configfile
from cli import session as sessions
from cli.client import ApiError
from cli.output import error_text, fail, table
from cli.status import credentials, default_ca


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "upgrade-check",
        help="check that every replica understands every command in the log",
        description="Each Raft command carries an envelope version. A replica applies "
        "commands up to its own version and stops, loudly, at a newer one rather than "
        "guess. This lists what each replica applies, the highest version in the log "
        "and the highest any replica writes, and exits 1 if a replica would stop (or "
        "has stopped: HALTED). Upgrade one replica at a time; run this between them.",
        epilog="example:\n  qreg upgrade-check --url https://127.0.0.1:5000 --ca ./data/ca.crt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", default=None, help="any replica's URL (as for qreg status)")
    p.add_argument("--ca", default=None, help="the cluster CA certificate (as for qreg status)")
    p.add_argument("--config", default="", help="a replica's config: its secret is the credential")
    p.set_defaults(func=run)


def verdict(replicas: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """The highest version the cluster holds or may write, and what stands in the way."""
    reachable = [r for r in replicas if r.get("command_version") is not None]
    needed = max(
        [r.get("highest_command_version") or 0 for r in reachable]
        + [r["command_version"] for r in reachable],
        default=0,
    )
    problems = []
    for r in replicas:
        if r.get("halted"):
            problems.append(f"{r['replica_id']} has stopped applying the log: {r['halted']}")
        elif r.get("command_version") is None:
            problems.append(f"{r['replica_id']} did not answer: check it before going on")
        elif r["command_version"] < needed:
            problems.append(
                f"{r['replica_id']} applies up to version {r['command_version']}, the "
                f"cluster holds or may write {needed}: upgrade it next"
            )
    return needed, problems


def run(args: argparse.Namespace) -> int:
    url = args.url or (
        configfile.member(args.config)[0] if args.config else "https://127.0.0.1:5000"
    )
    verify = ssl.create_default_context()
    ca = args.ca or default_ca(args.config)
    if os.path.isfile(ca):
        verify.load_verify_locations(ca)
    try:
        r = httpx.get(
            f"{url.rstrip('/')}/api/v0/replicas",
            timeout=10,
            verify=verify,
            headers=credentials(args.config),
        )
    except httpx.HTTPError as e:
        return fail("upgrade-check", f"cannot reach {url}: {e}")
    except (OSError, ValueError, ApiError, sessions.NotSignedIn) as e:
        return fail("upgrade-check", str(e))
    if r.status_code != 200:
        return fail("upgrade-check", error_text(r))
    replicas = r.json()["replicas"]
    needed, problems = verdict(replicas)
    rows = [
        [
            m["replica_id"],
            m.get("version"),
            m.get("command_version"),
            m.get("highest_command_version"),
            "HALTED" if m.get("halted") else ("ok" if m.get("command_version") else None),
        ]
        for m in replicas
    ]
    print(table(["id", "release", "applies up to", "highest applied", "state"], rows))
    for line in problems:
        print(line)
    if not problems:
        print(f"every replica applies version {needed}: safe to go on")
    return 1 if problems else 0
