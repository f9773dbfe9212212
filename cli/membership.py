"""`qreg join-token`, `qreg join` and `qreg remove`: growing and shrinking a cluster."""

from __future__ import annotations

import argparse
import os
import ssl
import time
from typing import Any

import httpx

from cli import configfile, ports
from cli.cluster_client import ClusterClient, ClusterUnreachable, error_of
from cli.output import fail
from replica import join_tokens, joining, pki
from replica.internal_auth import INTERNAL_HEADER, internal_token

_DEFAULT_CONFIG = "./data/replica-0/replica.toml"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "join-token",
        help="print a token that lets a new replica join (expires in an hour)",
        description="Print a join token for the cluster this replica belongs to. Anyone "
        "holding it can join a replica and learn the cluster secret until it "
        "expires: treat it as the secret. --revoke voids every token issued so far, "
        "on every replica.",
        epilog="examples:\n  qreg join-token --config ./data/replica-0/replica.toml\n"
        "  qreg join-token --ttl 600          # ten minutes\n"
        "  qreg join-token --revoke           # a token leaked: void them all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        default=_DEFAULT_CONFIG,
        help=f"a member's config file (default {_DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--ttl",
        type=int,
        default=join_tokens.DEFAULT_TTL_S,
        help=f"seconds the token stays valid (default {join_tokens.DEFAULT_TTL_S})",
    )
    p.add_argument(
        "--revoke",
        action="store_true",
        help="void every join token issued until now instead of printing one",
    )
    p.set_defaults(func=print_token)

    p = subparsers.add_parser(
        "join",
        help="add this host to a cluster as a new replica",
        description="Set up a new replica that joins the cluster at --existing: it fetches the "
        "cluster secret with the join token, starts from a snapshot of the metadata "
        "taken now and runs in the foreground (unless --no-start). Once running, it "
        "asks the cluster to add it as a voting member and receives what followed "
        "the snapshot. Its id and its HTTP, Raft and gRPC addresses must be new to "
        "the cluster.",
        epilog="example:\n  qreg join --existing https://10.0.0.1:5000 --token qreg-join-… "
        "--replica-id replica-3 --data ./data/replica-3 --port 5003",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--existing", required=True, help="URL of any replica of the cluster")
    token = p.add_mutually_exclusive_group(required=True)
    token.add_argument("--token", help="from qreg join-token")
    token.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the token from FILE (a secret mounted into a container), not the "
        "command line that ps and docker inspect show",
    )
    p.add_argument("--replica-id", required=True, help="a new, unique replica id")
    p.add_argument("--data", required=True, help="this replica's data directory (new)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve HTTP on")
    p.add_argument("--port", type=int, default=5000, help="HTTP port")
    p.add_argument("--raft-address", help="host:port for Raft (default HOST:PORT+1000)")
    p.add_argument("--grpc-address", help="host:port of the blob service (default HOST:PORT+2000)")
    p.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name or address for this replica's certificate (repeatable)",
    )
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP to clients (local trials only; peers still use mutual TLS)",
    )
    p.add_argument("--no-start", action="store_true", help="set up and join, but do not run")
    p.set_defaults(func=join)

    p = subparsers.add_parser(
        "remove",
        help="remove a replica from the cluster, healthy or dead",
        description="Remove a replica from the Raft membership and the replica list. Stop it "
        "first if it is alive. Removing leaves the others a smaller majority to reach.",
        epilog="example:\n  qreg remove replica-2 --config ./data/replica-0/replica.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("replica_id")
    p.add_argument(
        "--config",
        default=_DEFAULT_CONFIG,
        help=f"a member's config: its URL and the cluster secret (default {_DEFAULT_CONFIG})",
    )
    p.set_defaults(func=remove)


def print_token(args: argparse.Namespace) -> int:
    url, secret = configfile.member(args.config)
    if not secret:
        return fail("join-token", f"{args.config} has no cluster secret")
    if args.revoke:
        try:
            with ClusterClient(args.config, timeout=30) as cluster:
                r = cluster.request("POST", "/api/v0/join-tokens/revoke")
        except ClusterUnreachable as e:
            return fail("join-token", str(e))
        if r.status_code != 200:
            return fail("join-token", f"{url} answered {error_of(r)}")
        print("every join token issued until now is revoked")
        return 0
    if not 60 <= args.ttl <= 7 * 86400:
        return fail("join-token", "--ttl is 60 s to 7 days")
    try:
        with open(configfile.ca_path(args.config), "rb") as f:
            pin = pki.fingerprint(f.read())
    except OSError:
        pin = ""
    print(join_tokens.issue(secret, int(time.time() * 1000), args.ttl, pin))
    return 0


def _pinned_ca(existing: str, token: str) -> ssl.SSLContext | None:
    """Trust the CA that `existing` serves if its fingerprint is the token's pin."""
    pin = join_tokens.ca_pin(token)
    if not existing.startswith("https://"):
        return None
    if not pin:
        raise ValueError("this token pins no CA: run qreg join-token again on a member")
    pem = httpx.get(f"{existing}/ca", verify=False, timeout=10).content  # checked just below
    if pki.fingerprint(pem) != pin:
        raise ValueError(
            f"{existing} serves a CA whose fingerprint differs from the token's: "
            "not our cluster, or a man in the middle"
        )
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=pem.decode())
    return context


def join(args: argparse.Namespace) -> int:
    existing = args.existing.rstrip("/")
    if args.token_file:
        try:
            with open(args.token_file) as f:
                args.token = f.read().strip()
        except OSError as e:
            return fail("join", f"cannot read {args.token_file}: {e.strerror}")
    data = os.path.abspath(args.data)
    if os.path.exists(os.path.join(data, "raft", "journal")) or os.path.exists(
        os.path.join(data, "replica.toml")
    ):
        return fail("join", f"{data} already holds a replica; use a new directory")
    # The ports install uses too (README, "Ports"): a firewall opens the same three everywhere.
    raft_address = args.raft_address or f"{args.host}:{args.port + 1000}"
    grpc_address = args.grpc_address or f"{args.host}:{args.port + 2000}"
    for address in (f"{args.host}:{args.port}", raft_address, grpc_address):
        if problem := ports.in_use(address):
            return fail("join", problem)
    scheme = "http" if args.insecure_http else "https"
    http_url = f"{scheme}://{args.host}:{args.port}"
    try:
        verify: ssl.SSLContext | bool = _pinned_ca(existing, args.token) or True
    except (ValueError, httpx.HTTPError) as e:
        return fail("join", str(e))
    try:
        r = httpx.post(
            f"{existing}/api/v0/join",
            timeout=30,
            verify=verify,
            json={
                "token": args.token,
                "replica_id": args.replica_id,
                "raft_address": raft_address,
                "http_url": http_url,
                "grpc_address": grpc_address,
            },
        )
        if r.status_code != 200:
            return fail("join", f"{existing} refused: {error_of(r)}")
        answer = r.json()
        secret, members = answer["secret"], answer["members"]
        pki.set_up_replica(
            pki.TlsFiles.under(data),
            answer["ca"].encode(),
            answer["ca_key"].encode(),
            args.replica_id,
            [args.host, "localhost", "127.0.0.1", *args.san],
        )
        headers = {INTERNAL_HEADER: internal_token(secret) or ""}
        # Start from a snapshot taken now, whose entries carry the log's real terms:
        # the new member then needs only what follows it.
        os.makedirs(os.path.join(data, "raft"), exist_ok=True)
        seeded = _download_snapshot(
            existing, headers, os.path.join(data, "raft", "snapshot"), verify
        )
    except httpx.HTTPError as e:
        return fail("join", f"cannot reach {existing}: {e}")
    print(
        f"seeded from a snapshot of {seeded} bytes"
        if seeded
        else "no snapshot yet: the leader will send the whole log"
    )
    config_path = os.path.join(data, "replica.toml")
    configfile.write(
        config_path,
        {
            "replica": {"id": args.replica_id, "data_dir": data},
            "http": {"host": args.host, "port": args.port, "insecure": args.insecure_http},
            "raft": {"address": raft_address, "secret": secret, "peers": members},
            "grpc": {"address": grpc_address},
        },
    )
    # The replica asks to be added once it runs (replica/joining.py): added before, it
    # would count toward the majority while it cannot answer.
    joining.write_request(data, existing)
    if args.no_start:
        print(
            f"{args.replica_id} is set up in {data}, not yet a member.\n"
            f"start it: qreg serve --config {config_path}\n"
            "once running it asks the cluster to add it; qreg status lists it then"
        )
        return 0
    print(
        f"starting {args.replica_id}; it becomes a voting member once it runs "
        '(its log says "joined"; qreg status lists it)',
        flush=True,
    )
    from replica.config import load
    from replica.server import serve

    serve(load(config_path))
    return 0


def _download_snapshot(
    url: str, headers: dict[str, str], path: str, verify: ssl.SSLContext | bool
) -> int:
    with httpx.stream(
        "GET", f"{url}/api/v0/snapshot", headers=headers, timeout=120, verify=verify
    ) as r:
        if r.status_code == 204:
            return 0
        r.raise_for_status()
        size = 0
        with open(path + ".tmp", "wb") as f:
            for chunk in r.iter_bytes(1 << 20):
                f.write(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
    os.replace(path + ".tmp", path)
    return size


def remove(args: argparse.Namespace) -> int:
    try:
        with ClusterClient(args.config, timeout=30) as cluster:
            r = cluster.request("DELETE", f"/api/v0/replicas/{args.replica_id}")
    except ClusterUnreachable as e:
        return fail("remove", str(e))
    if r.status_code != 200:
        return fail("remove", f"{cluster.url} answered {error_of(r)}")
    print(f"removed {args.replica_id}; members now: {', '.join(r.json()['members'])}")
    return 0
