"""`qreg backup` and `qreg restore`: a sealed copy of the cluster, and a cluster made from one."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import httpx

from cli import backup_file, configfile
from cli.cluster_client import ClusterClient, error_of
from cli.install import first_replica
from cli.output import fail
from cli.up import write_configs
from replica import pki

_DEFAULT_CONFIG = "./data/replica-0/replica.toml"
_PASSPHRASE_HELP = (
    f"a file holding the passphrase (default: ${backup_file.PASSPHRASE_ENV}, "
    "else asked on the terminal)"
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "backup",
        help="download a consistent, encrypted backup of the cluster",
        description="Download a consistent snapshot of the metadata (repositories, manifests, "
        "tags, accounts with their password hashes, settings) from a running "
        "replica while the cluster keeps serving, with the cluster secret and CA "
        "(from --config's replica), sealed with a passphrase (scrypt, AES-256-GCM). "
        "Without --with-blobs it holds no image bytes: a cluster restored from it "
        "lists every image and serves none until the blob files are back. With "
        "--with-blobs DIR, every blob the metadata names is downloaded into DIR "
        "(digests checked; run it again to resume).",
        epilog="examples:\n  qreg backup meta.qreg --config ./data/replica-0/replica.toml\n"
        "  QREG_BACKUP_PASSPHRASE=… qreg backup meta.qreg --with-blobs ./backup-blobs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="where to write the backup")
    p.add_argument(
        "--config",
        default=_DEFAULT_CONFIG,
        help=f"a replica's config: its URL, the cluster secret and CA (default {_DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--with-blobs",
        metavar="DIR",
        help="also download every blob the backup names into DIR (resumable)",
    )
    p.add_argument("--passphrase-file", metavar="FILE", help=_PASSPHRASE_HELP)
    p.set_defaults(func=backup)

    p = subparsers.add_parser(
        "restore",
        help="create a new cluster from a backup",
        description="Make a new cluster whose metadata starts as the backup's, keeping the "
        "backup's cluster secret and CA (clients keep trusting its certificate). "
        "Without --host: DATA/replica-0 … replica-N-1 of a local cluster, started "
        "with qreg up. With --host: this host's replica of a multi-host cluster, "
        "laid out as qreg install does (start it with qreg serve, then qreg join "
        "the other hosts). With --blobs DIR (from qreg backup --with-blobs) the "
        "first replica starts with every blob and the others copy them; without, "
        "status counts the blobs as held nowhere until their files are back.",
        epilog="examples:\n"
        "  qreg restore meta.qreg --data ./restored --replicas 3 --blobs ./backup-blobs\n"
        "  qreg up --data ./restored --replicas 3\n"
        "  qreg restore meta.qreg --data /var/lib/qreg --host 10.0.0.1 --blobs ./blobs\n"
        "  qreg serve --config /var/lib/qreg/replica.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="a file written by qreg backup")
    p.add_argument("--data", default="./data", help="data directory of the new cluster or replica")
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="replicas of a local cluster (default 1; not with --host)",
    )
    p.add_argument("--port", type=int, default=5000, help="HTTP port (of replica 0)")
    p.add_argument("--host", help="this host's address: lay out one replica as qreg install does")
    p.add_argument("--replica-id", default="replica-0", help="with --host: this replica's id")
    p.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="with --host: another name for this replica's certificate",
    )
    p.add_argument(
        "--raft-address", help="with --host: host:port for Raft (default HOST:PORT+1000)"
    )
    p.add_argument(
        "--grpc-address", help="with --host: host:port of the blob service (default HOST:PORT+2000)"
    )
    p.add_argument("--blobs", metavar="DIR", help="blob files from qreg backup --with-blobs")
    p.add_argument("--passphrase-file", metavar="FILE", help=_PASSPHRASE_HELP)
    p.set_defaults(func=restore)


def _cluster_secrets(config_path: str) -> dict[str, str]:
    config = configfile.read(config_path)
    files = pki.TlsFiles.under(config.get("replica", {}).get("data_dir", ""))
    found = {"cluster_secret": config.get("raft", {}).get("secret", "")}
    for name, path in (("ca_cert", configfile.ca_path(config_path)), ("ca_key", files.ca_key)):
        with contextlib.suppress(OSError), open(path) as f:
            found[name] = f.read()
    return found


def backup(args: argparse.Namespace) -> int:
    from cli import backup_blobs  # LMDB: only for a backup that runs

    configfile.member(args.config)  # a missing config is said before the passphrase is asked
    try:
        passphrase = backup_file.passphrase(args.passphrase_file, confirm=True)
    except (backup_file.BadBackup, OSError) as e:
        return fail("backup", str(e))
    cluster = ClusterClient(args.config)
    plain = args.file + ".plain.part"  # owner only: it holds password hashes
    written = 0
    try:
        with cluster.stream("GET", "/api/v0/backup") as r:
            if r.status_code != 200:
                r.read()
                return fail("backup", f"{cluster.url} answered {error_of(r)}")
            with _private(plain) as f:
                for chunk in r.iter_bytes(1 << 20):
                    f.write(chunk)
                    written += len(chunk)
                    print(f"\r{written / (1 << 20):8.1f} MiB", end="", file=sys.stderr)
            applied = r.headers.get("Qreg-Applied-Index")
        with open(plain, "rb") as metadata, _private(args.file + ".part") as out:
            backup_file.seal(metadata, _cluster_secrets(args.config), passphrase, out)
        os.replace(args.file + ".part", args.file)
        print(f"\rwrote {args.file}: metadata up to log index {applied}, sealed")
        if args.with_blobs:
            fetched, total = backup_blobs.download(cluster, plain, args.with_blobs)
            print(
                f"blobs in {args.with_blobs}: {fetched} downloaded now, "
                f"{total / (1 << 20):.1f} MiB in all"
            )
    except httpx.HTTPError as e:
        resume = " (run the same command again to resume)" if args.with_blobs else ""
        return fail("backup", cluster.unreachable(e) + resume)
    except (RuntimeError, OSError) as e:
        return fail("backup", f"{e} (run the same command again to resume)")
    finally:
        cluster.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(plain)
    return 0


@contextlib.contextmanager
def _private(path: str) -> Iterator[Any]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def restore(args: argparse.Namespace) -> int:
    data = os.path.abspath(args.data)
    os.makedirs(data, exist_ok=True)
    plain = os.path.join(data, ".restoring.qreg")
    try:
        if backup_file.is_sealed(args.file):
            passphrase = backup_file.passphrase(args.passphrase_file, confirm=False)
            with _private(plain) as out:
                found = backup_file.unseal(args.file, passphrase, out)
            metadata = plain
        else:  # an unsealed backup from an earlier version: metadata only
            found, metadata = {}, args.file
        ca = (
            (found["ca_cert"].encode(), found["ca_key"].encode())
            if found.get("ca_cert") and found.get("ca_key")
            else None
        )
        if args.host:
            return _restore_host(args, data, metadata, found.get("cluster_secret"), ca)
        return _restore_local(args, data, metadata, found.get("cluster_secret"), ca)
    except (backup_file.BadBackup, OSError, ValueError) as e:
        return fail("restore", str(e))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(plain)


def _restore_local(
    args: argparse.Namespace,
    data: str,
    metadata: str,
    secret: str | None,
    ca: tuple[bytes, bytes] | None,
) -> int:
    from consensus import offline  # LMDB and Raft snapshots: only for a restore that runs

    configs = write_configs(data, args.replicas, args.port, secret=secret, ca=ca)
    addresses = [configfile.read(c)["raft"]["address"] for c in configs]
    for i in range(args.replicas):
        directory = os.path.join(data, f"replica-{i}")
        applied = offline.restore(
            metadata,
            os.path.join(directory, "metadata"),
            os.path.join(directory, "raft"),
            addresses,
        )
        print(f"replica-{i}: metadata restored up to log index {applied}")
    _restore_blobs(args, os.path.join(data, "replica-0"))
    print(f"{'kept the backup' if ca else 'a new'} cluster CA: {data}/ca.crt")
    print(
        f"start it with: qreg up --data {args.data} --replicas {args.replicas} --port {args.port}"
    )
    return 0


def _restore_host(
    args: argparse.Namespace,
    data: str,
    metadata: str,
    secret: str | None,
    ca: tuple[bytes, bytes] | None,
) -> int:
    if os.path.exists(os.path.join(data, "replica.toml")):
        raise ValueError(f"{data} already holds a replica; use a new directory")
    path, _, _ = first_replica(
        data,
        args.replica_id,
        args.host,
        args.port,
        False,
        args.san,
        args.raft_address,
        args.grpc_address,
        secret=secret,
        ca=ca,
    )
    raft_address = configfile.read(path)["raft"]["address"]
    from consensus import offline

    applied = offline.restore(
        metadata, os.path.join(data, "metadata"), os.path.join(data, "raft"), [raft_address]
    )
    print(f"{args.replica_id}: metadata restored up to log index {applied}")
    _restore_blobs(args, data)
    print(f"{'kept the backup' if ca else 'a new'} cluster CA: {data}/ca.crt")
    print(
        f"start it:  qreg serve --config {path}\n"
        f"then grow: qreg join-token --config {path}; qreg join … on each other host"
    )
    return 0


def _restore_blobs(args: argparse.Namespace, replica_dir: str) -> None:
    from cli import backup_blobs

    if args.blobs:
        count = backup_blobs.install(args.blobs, os.path.join(replica_dir, "storage"))
        print(f"{count} blob files put in place (checked and shared when it starts)")
    else:
        print(
            "no blobs restored: status counts them as held nowhere until their files are "
            "back (qreg restore --blobs DIR, from qreg backup --with-blobs DIR)"
        )
