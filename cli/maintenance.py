"""`qreg backup`, `qreg restore` and `qreg emergency-repair`: keeping the metadata safe."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx

from cli import backup_blobs, configfile
from cli.output import fail
from replica import data_lock
from cli.up import write_configs
from consensus import offline
from replica.peers import INTERNAL_HEADER, internal_token

_DEFAULT_CONFIG = "./data/replica-0/replica.toml"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "backup", help="download a consistent backup of the cluster (metadata, optionally blobs)",
        description="Download a consistent snapshot of the metadata (repositories, manifests, "
                    "tags, accounts with their password hashes, settings) from a running "
                    "replica, while the cluster keeps serving. Without --with-blobs it holds no "
                    "image bytes: a cluster restored from it knows every image but can serve "
                    "none until the blob files are put back. With --with-blobs DIR, every blob "
                    "the metadata names is downloaded into DIR too (digests checked; run it "
                    "again to resume). Keep backups private: they hold password hashes.",
        epilog="examples:\n  qreg backup meta.qreg --config ./data/replica-0/replica.toml\n"
               "  qreg backup meta.qreg --with-blobs ./backup-blobs   # a full backup",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="where to write the backup")
    p.add_argument("--with-blobs", metavar="DIR",
                   help="also download every blob the backup names into DIR (resumable)")
    p.add_argument("--config", default=_DEFAULT_CONFIG,
                   help=f"a replica's config: its URL and the cluster secret (default {_DEFAULT_CONFIG})")
    p.set_defaults(func=backup)

    p = subparsers.add_parser(
        "scrub", help="re-hash every blob of a replica now and repair corrupt ones",
        description="Ask a running replica to re-hash every blob it holds, as its scheduled "
                    "scrub does ([scrub] interval_s), and wait for the report. A blob whose "
                    "bytes no longer match its digest is moved to storage/corrupt/ and copied "
                    "again from a replica with a good copy.",
        epilog="example:\n  qreg scrub --config ./data/replica-1/replica.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=_DEFAULT_CONFIG,
                   help=f"the replica's config: its URL and the cluster secret (default {_DEFAULT_CONFIG})")
    p.set_defaults(func=scrub)

    p = subparsers.add_parser(
        "restore", help="create a fresh cluster's data directories from a backup",
        description="Lay out DATA/replica-0 … replica-N-1 for a new local cluster whose "
                    "metadata starts as the backup's; then start it with qreg up. Refuses "
                    "data directories that already hold a Raft journal. With --blobs DIR (from "
                    "qreg backup --with-blobs) the first replica starts with every blob and the "
                    "others copy them; without, status and /health count the blobs as held "
                    "nowhere until their files are put back.",
        epilog="example:\n  qreg restore meta.qreg --data ./restored --replicas 3 && "
               "qreg up --data ./restored --replicas 3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="a file written by qreg backup")
    p.add_argument("--data", default="./data", help="data directory of the new cluster")
    p.add_argument("--replicas", type=int, default=1, help="replicas of the new cluster")
    p.add_argument("--port", type=int, default=5000, help="HTTP port of replica 0")
    p.add_argument("--blobs", metavar="DIR", help="blob files from qreg backup --with-blobs")
    p.set_defaults(func=restore)

    p = subparsers.add_parser(
        "emergency-repair", help="make a surviving replica a cluster of one after quorum is lost",
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
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replica-id", help="the surviving replica, under --data")
    p.add_argument("--data", default="./data", help="the directory holding DATA/REPLICA_ID")
    p.add_argument("--config", help="the surviving replica's config file, instead of --replica-id")
    p.set_defaults(func=emergency_repair)


def scrub(args: argparse.Namespace) -> int:
    if not configfile.read(args.config):
        return fail("scrub", f"cannot read {args.config}")
    url, secret = configfile.member(args.config)
    print(f"scrubbing {url} (this re-reads every blob it holds) ...", file=sys.stderr)
    try:
        r = httpx.post(f"{url}/api/v0/scrub", timeout=None, verify=configfile.verify(args.config),
                       headers={INTERNAL_HEADER: internal_token(secret) or ""})
    except httpx.HTTPError as e:
        return fail("scrub", f"cannot reach {url} (from {args.config}): {e}")
    if r.status_code != 200:
        return fail("scrub", f"{url} answered {r.status_code}: {r.text[:200]}")
    report = r.json()
    print(f"checked {report['checked']} blobs ({report['bytes'] / (1 << 20):.1f} MiB) in "
          f"{report['seconds']} s: {len(report['corrupt'])} corrupt, "
          f"{len(report['repaired'])} repaired")
    for digest in report["corrupt"]:
        state = "repaired" if digest in report["repaired"] else "NOT REPAIRED: no good copy"
        print(f"  {digest}  {state}")
    return 0 if len(report["corrupt"]) == len(report["repaired"]) else 1


def backup(args: argparse.Namespace) -> int:
    if not configfile.read(args.config):
        return fail("backup", f"cannot read {args.config}")
    url, secret = configfile.member(args.config)
    headers = {INTERNAL_HEADER: internal_token(secret) or ""}
    written = 0
    try:
        with httpx.stream("GET", f"{url}/api/v0/backup", headers=headers, timeout=120,
                          verify=configfile.verify(args.config)) as r:
            if r.status_code != 200:
                r.read()
                return fail("backup", f"{url} answered {r.status_code}: {r.text[:200]}")
            # A backup holds password hashes: readable by its owner only.
            fd = os.open(args.file + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                for chunk in r.iter_bytes(1 << 20):
                    f.write(chunk)
                    written += len(chunk)
                    print(f"\r{written / (1 << 20):8.1f} MiB", end="", file=sys.stderr)
                f.flush()
                os.fsync(f.fileno())
            applied = r.headers.get("Qreg-Applied-Index")
    except httpx.HTTPError as e:
        return fail("backup", f"cannot reach {url} (from {args.config}): {e}")
    os.replace(args.file + ".part", args.file)
    print(f"\rwrote {args.file}: {written} bytes, metadata up to log index {applied}")
    if args.with_blobs:
        try:
            fetched, total = backup_blobs.download(url, headers, configfile.verify(args.config),
                                                   args.file, args.with_blobs)
        except (httpx.HTTPError, RuntimeError, OSError) as e:
            return fail("backup", f"blobs: {e} (run the same command again to resume)")
        print(f"blobs in {args.with_blobs}: {fetched} downloaded now, "
              f"{total / (1 << 20):.1f} MiB in all")
    return 0


def restore(args: argparse.Namespace) -> int:
    data = os.path.abspath(args.data)
    configs = write_configs(data, args.replicas, args.port)
    addresses = [configfile.read(c)["raft"]["address"] for c in configs]
    for i in range(args.replicas):
        directory = os.path.join(data, f"replica-{i}")
        try:
            applied = offline.restore(args.file, os.path.join(directory, "metadata"),
                                      os.path.join(directory, "raft"), addresses)
        except (OSError, ValueError) as e:
            return fail("restore", f"{directory}: {e}")
        print(f"replica-{i}: metadata restored up to log index {applied}")
    if args.blobs:
        count = backup_blobs.install(args.blobs, os.path.join(data, "replica-0", "storage"))
        print(f"replica-0: {count} blob files put in place (checked and shared when it starts)")
    else:
        print("no blobs restored: status counts them as held nowhere until their files are "
              "back (qreg restore --blobs DIR, from qreg backup --with-blobs DIR)")
    print(f"start it with: qreg up --data {args.data} --replicas {args.replicas} --port {args.port}")
    return 0


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
    applied, lost = offline.repair_to_single(os.path.join(directory, "metadata"),
                                             os.path.join(directory, "raft"), address, replica_id)
    config["raft"]["peers"] = []
    configfile.write(path, config)
    print(f"{replica_id} is now a cluster of one, with every entry up to log index {applied}.")
    if lost:
        print(f"removed from the replica list: {', '.join(lost)} (their ids are free again)")
    print("next:\n"
          f"  qreg serve --config {path}\n"
          f"  qreg join-token --config {path}\n"
          "  then qreg join each replacement (a new or wiped data directory) to it")
    return 0
