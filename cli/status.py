"""`qreg status`: every replica of the cluster, as the cluster sees it."""

from __future__ import annotations

import argparse
import json
import os
import ssl
import time
from typing import Any

import httpx

from cli import configfile
from cli import session as sessions
from cli.client import ApiError, ManagementClient
from cli.output import error_text, fail, table
from replica.internal_auth import INTERNAL_HEADER, internal_token

_DEFAULT_CONFIG = "./data/replica-0/replica.toml"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "status",
        help="show every replica: role, term, indexes, lag, health",
        description="Ask one replica for the state of the whole cluster. LAG is how many "
        "committed entries a replica has yet to apply; LAST CONTACT is how long "
        "ago the leader last heard from it; BLOBS TO SYNC is what it still lacks "
        "of the blobs the cluster holds (it copies them in the background); "
        "'held nowhere' counts blobs the metadata lists that no replica has (lost "
        "with their replicas, or a restore without --blobs). With blobs in object storage "
        "HEALTH says when a replica cannot reach the bucket.",
        epilog="example:\n  qreg status --url https://127.0.0.1:5000 --ca ./data/ca.crt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url",
        default=None,
        help="any replica's URL (default: the --config replica's, else https://127.0.0.1:5000)",
    )
    p.add_argument(
        "--ca",
        default=None,
        help="the cluster CA certificate to trust (default: DATA/ca.crt of the "
        "--config replica, where qreg install writes it, else ./data/ca.crt, "
        "where qreg up does; the system's roots are trusted too)",
    )
    p.add_argument(
        "--config",
        default="",
        help="a replica's config: its cluster secret is the credential (default "
        f"{_DEFAULT_CONFIG} if it exists, else the session of qreg login)",
    )
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    p.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        default=0,
        help="keep asking until every replica is reachable and healthy (and, with "
        "--expect, that many are listed), up to SECONDS; for scripts",
    )
    p.add_argument(
        "--expect",
        type=int,
        metavar="N",
        default=0,
        help="with --wait: also wait until N replicas are listed",
    )
    p.set_defaults(func=run)


def _missing(member: dict[str, Any]) -> str | None:
    if member.get("blobs_missing") is None:
        return None
    text = f"{member['blobs_missing']} ({member['bytes_missing'] / (1 << 20):.1f} MiB)"
    if member.get("blobs_unavailable"):
        text += f", {member['blobs_unavailable']} held nowhere"
    return text


def _health(member: dict[str, Any]) -> str:
    if member.get("diverged_at") is not None:
        return f"DIVERGED at index {member['diverged_at']}"
    if not member["reachable"]:
        return "down"
    store = member.get("blob_store") or {}
    if store.get("reachable") is False:
        return f"object store unreachable{': ' + store['error'] if store.get('error') else ''}"
    return "ok" if member["has_quorum"] else "no quorum"


def default_ca(config: str) -> str:
    data_dir = configfile.read(config).get("replica", {}).get("data_dir") if config else None
    for candidate in ([os.path.join(data_dir, "ca.crt")] if data_dir else []) + (
        [configfile.ca_path(config)] if config else []
    ):
        if os.path.isfile(candidate):
            return candidate
    return "./data/ca.crt"


def credentials(config: str) -> dict[str, str]:
    """The cluster secret of a local replica's config, else the qreg login session."""
    if config or os.path.isfile(_DEFAULT_CONFIG):
        _, secret = configfile.member(config or _DEFAULT_CONFIG)
        return {INTERNAL_HEADER: internal_token(secret) or ""}
    with ManagementClient.signed_in() as client:
        return {"Authorization": f"Bearer {client.access_token()}"}


def _ask(url: str, verify: ssl.SSLContext, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(
        f"{url.rstrip('/')}/api/v0/replicas", timeout=10, verify=verify, headers=headers
    )


def _settled(body: dict[str, Any], expect: int) -> bool:
    members = body["replicas"]
    return len(members) >= expect and all(
        m["reachable"]
        and m.get("has_quorum")
        and m.get("diverged_at") is None
        and (m.get("blob_store") or {}).get("reachable", True)
        for m in members
    )


def run(args: argparse.Namespace) -> int:
    url = args.url or (
        configfile.member(args.config)[0] if args.config else "https://127.0.0.1:5000"
    )
    deadline = time.monotonic() + args.wait
    while True:
        try:
            verify = ssl.create_default_context()
            ca = args.ca or default_ca(args.config)
            if os.path.isfile(ca):
                verify.load_verify_locations(ca)
            r = _ask(url, verify, credentials(args.config))
            problem = None if r.status_code == 200 else error_text(r)
        except httpx.HTTPError as e:
            r, problem = None, f"cannot reach {url}: {e}"
        except (OSError, ValueError, ApiError, sessions.NotSignedIn) as e:
            return fail("status", str(e))
        if r is not None and r.status_code in (401, 403):
            return fail(
                "status",
                f"{error_text(r)}: sign in with qreg login (an administrator "
                "sees every replica's address) or pass --config",
            )
        if problem is None and (not args.wait or _settled(r.json(), args.expect)):  # type: ignore[union-attr]
            break
        if time.monotonic() >= deadline:
            if problem is not None:
                return fail("status", problem)
            break  # show what is unsettled
        time.sleep(0.5)
    assert r is not None
    body = r.json()
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    rows = [
        [
            m["replica_id"],
            m["url"],
            m["role"],
            m["term"],
            m["commit_index"],
            m["applied_index"],
            m["lag"],
            _health(m),
            f"{m['last_contact_s']:.1f}s ago" if m["last_contact_s"] is not None else None,
            _missing(m),
        ]
        for m in body["replicas"]
    ]
    print(
        table(
            [
                "id",
                "address",
                "role",
                "term",
                "commit",
                "applied",
                "lag",
                "health",
                "last contact",
                "blobs to sync",
            ],
            rows,
        )
    )
    diverged = [m for m in body["replicas"] if m.get("diverged_at") is not None]
    for m in diverged:
        print(
            f"{m['replica_id']}: {m.get('divergence')}; run qreg verify, then rebuild it "
            "(qreg remove, then qreg join into an empty directory)"
        )
    healthy = all(m["reachable"] for m in body["replicas"]) and not diverged
    return 0 if healthy and len(body["replicas"]) >= args.expect else 1
