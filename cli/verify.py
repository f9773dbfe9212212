"""`qreg verify`: do all replicas hold the same metadata? Names where they differ."""

from __future__ import annotations

import argparse
import time
from typing import Any

from cli import configfile
from cli.cluster_client import ClusterClient, ClusterUnreachable
from cli.output import fail, table

_DEFAULT_CONFIG = "./data/replica-0/replica.toml"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "verify",
        help="compare every replica's metadata now; name the key ranges that differ",
        description="Ask every replica for a digest of its whole metadata state, per key "
        "range, at the same applied index (it retries while writes move the "
        "indexes apart), and compare them. Exit 1 if any replica differs or could "
        "not be compared. Each replica also compares itself with its peers all the "
        "time; qreg status shows one that diverged.",
        epilog="example:\n  qreg verify --config ./data/replica-0/replica.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        default=_DEFAULT_CONFIG,
        help=f"a replica's config: its cluster secret is the credential "
        f"(default {_DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--attempts",
        type=int,
        default=20,
        help="rounds to try for every replica at one applied index (default 20)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not configfile.read(args.config):
        return fail("verify", f"cannot read {args.config}")
    with ClusterClient(args.config) as c:
        url = c.url
        try:
            members = c.request("GET", "/api/v0/replicas").json()["replicas"]
        except (ClusterUnreachable, ValueError, KeyError) as e:
            return fail("verify", f"cannot list the replicas at {url}: {e}")
        answers: dict[str, dict[str, Any]] = {}
        for _ in range(max(args.attempts, 1)):
            answers = {}
            for m in members:
                try:
                    ranges = c.request("GET", f"{m['url']}/_internal/state-ranges")
                    answers[m["replica_id"]] = ranges.json()
                except (ClusterUnreachable, ValueError) as e:
                    answers[m["replica_id"]] = {"error": str(e)[:100]}
            indexes = {a.get("applied_index") for a in answers.values() if "error" not in a}
            if len(indexes) <= 1:
                break
            time.sleep(0.3)
    return _report(answers)


def _report(answers: dict[str, dict[str, Any]]) -> int:
    reachable = {r: a for r, a in answers.items() if "error" not in a}
    indexes = {a["applied_index"] for a in reachable.values()}
    digests = {a["digest"] for a in reachable.values()}
    same_index = len(indexes) == 1
    rows = [
        [r, a.get("applied_index", "-"), (a.get("digest") or "")[:16] or a.get("error")]
        for r, a in sorted(answers.items())
    ]
    print(table(["replica", "applied index", "state digest"], rows))
    if not same_index:
        print(
            "the replicas never stood at one applied index together (writes kept coming): "
            "run it again at a quieter moment"
        )
        return 1
    if len(digests) == 1 and len(reachable) == len(answers):
        print(f"all {len(answers)} replicas hold the same metadata at index {indexes.pop()}")
        return 0
    if len(digests) > 1:
        names = sorted({n for a in reachable.values() for n in a["ranges"]})
        differing = [
            n for n in names if len({str(a["ranges"].get(n)) for a in reachable.values()}) > 1
        ]
        print(
            f"the replicas differ in {len(differing)} key range(s); the first: "
            f"{', '.join(differing[:5])}"
        )
        for name in differing[:5]:
            for r, a in sorted(reachable.items()):
                count, digest = a["ranges"].get(name, (0, ""))
                print(f"  {name:8} {r}: {count} keys, {digest[:16]}")
    return 1
