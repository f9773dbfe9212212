"""`qreg scrub` and `qreg emergency-repair`: repairing blobs, and a cluster without a majority."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from cli import configfile
from cli.cluster_client import ClusterClient, ClusterUnreachable, error_of
from cli.output import fail
from replica import data_lock

_DEFAULT_CONFIG = "./data/replica-0/replica.toml"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scrub",
        help="re-hash every blob of a replica now and repair corrupt ones",
        description="Ask a running replica to re-hash every blob it holds, as its scheduled "
        "scrub does ([scrub] interval_s), and wait for the report. A blob whose "
        "bytes no longer match its digest is moved to storage/corrupt/ and copied "
        "again from a replica with a good copy.",
        epilog="example:\n  qreg scrub --config ./data/replica-1/replica.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        default=_DEFAULT_CONFIG,
        help=f"the replica's config: its URL and the cluster secret (default {_DEFAULT_CONFIG})",
    )
    p.set_defaults(func=scrub)

    p = subparsers.add_parser(
        "emergency-repair",
        help="make a surviving replica a cluster of one after quorum is lost",
        description="When a majority of replicas is lost for good, turn one stopped survivor "
        "into a single-replica cluster that keeps everything it applied. The lost "
        "replicas leave the replica list (their ids can be used again) and the Raft "
        "term carries on. Never run it while the lost replicas may come back: two "
        "of them together would form a second cluster.",
        epilog="then, in this order:\n"
        "  1. qreg emergency-repair --replica-id replica-1 --data ./data\n"
        "  2. qreg serve --config ./data/replica-1/replica.toml\n"
        "  3. qreg join-token --config ./data/replica-1/replica.toml\n"
        "  4. on each replacement host, with a new (or wiped) data directory:\n"
        "     qreg join --existing URL_OF_REPLICA_1 --token TOKEN --replica-id replica-2 \\\n"
        "         --data DIR --host THAT_HOST\n"
        "  5. qreg status --config ./data/replica-1/replica.toml   # all listed, none down",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--replica-id", help="the surviving replica, under --data")
    p.add_argument("--data", default="./data", help="the directory holding DATA/REPLICA_ID")
    p.add_argument("--config", help="the surviving replica's config file, instead of --replica-id")
    p.set_defaults(func=emergency_repair)


def scrub(args: argparse.Namespace) -> int:
    if not configfile.read(args.config):
        return fail("scrub", f"cannot read {args.config}")
    try:
        with ClusterClient(args.config, timeout=None) as cluster:
            print(
                f"scrubbing {cluster.url} (this re-reads every blob it holds) ...", file=sys.stderr
            )
            r = cluster.request("POST", "/api/v0/scrub")
    except ClusterUnreachable as e:
        return fail("scrub", str(e))
    if r.status_code != 200:
        return fail("scrub", f"{cluster.url} answered {error_of(r)}")
    report = r.json()
    print(
        f"checked {report['checked']} blobs ({report['bytes'] / (1 << 20):.1f} MiB) in "
        f"{report['seconds']} s: {len(report['corrupt'])} corrupt, "
        f"{len(report['repaired'])} repaired"
    )
    for digest in report["corrupt"]:
        state = "repaired" if digest in report["repaired"] else "NOT REPAIRED: no good copy"
        print(f"  {digest}  {state}")
    return 0 if len(report["corrupt"]) == len(report["repaired"]) else 1


def emergency_repair(args: argparse.Namespace) -> int:
    if not args.config and not args.replica_id:
        return fail("emergency-repair", "give --replica-id (with --data) or --config", 2)
    path = args.config or os.path.join(args.data, args.replica_id, "replica.toml")
    config = configfile.read(path)
    if not config:
        return fail("emergency-repair", f"no replica config at {path}")
    directory = os.path.abspath(config["replica"]["data_dir"])
    replica_id = config["replica"]["id"]
    try:
        held = data_lock.lock(directory)  # noqa: F841 - held while the repair runs
    except data_lock.DataDirInUse as e:
        return fail("emergency-repair", str(e))
    address = config["raft"]["address"]
    from consensus import offline  # LMDB and Raft snapshots: only for a repair that runs

    applied, lost = offline.repair_to_single(
        os.path.join(directory, "metadata"), os.path.join(directory, "raft"), address, replica_id
    )
    config["raft"]["peers"] = []
    configfile.write(path, config)
    print(f"{replica_id} is now a cluster of one, with every entry up to log index {applied}.")
    if lost:
        print(f"removed from the replica list: {', '.join(lost)} (their ids are free again)")
    print(
        "next:\n"
        f"  qreg serve --config {path}\n"
        f"  qreg join-token --config {path}\n"
        "  then qreg join each replacement (a new or wiped data directory) to it"
    )
    return 0
