"""`qreg install`: set up the first replica of a new cluster on this host."""

from __future__ import annotations

import argparse
import os
import secrets
import time
from typing import Any

from cli import configfile, ports
from cli.output import fail
from replica import join_tokens, pki
from replica.auth import passwords


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "install",
        help="set up the first replica of a new cluster on this host",
        description="Create a new cluster: a cluster id and secret, this host's replica "
        "config and data directory. It prints how to start the replica and how "
        "other hosts join it.",
        epilog="example:\n  qreg install --data /var/lib/qreg --host 10.0.0.1 --port 5000\n"
        "  qreg serve --config /var/lib/qreg/replica.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="data directory of this replica (new)")
    p.add_argument("--replica-id", default="replica-0", help="this replica's id")
    p.add_argument("--host", default="127.0.0.1", help="address to serve HTTP on and advertise")
    p.add_argument("--port", type=int, default=5000, help="HTTP port")
    p.add_argument("--raft-address", help="host:port for Raft (default: HOST:PORT+1000)")
    p.add_argument("--grpc-address", help="host:port of the blob service (default: HOST:PORT+2000)")
    p.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name or address clients use for this replica, for its "
        "certificate (repeatable; --host, localhost and 127.0.0.1 are in it)",
    )
    p.add_argument(
        "--admin-password",
        metavar="PW",
        help="password of the admin account the cluster creates when it first "
        "starts (default: a generated one, printed once)",
    )
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP to clients (local trials only; peers still use mutual TLS)",
    )
    p.add_argument(
        "--secrets-file",
        metavar="FILE",
        help="write the generated admin password and the join token to FILE "
        "(mode 0600) instead of printing them: for containers, whose output "
        "ends up in logs",
    )
    p.set_defaults(func=run)


def first_replica(
    data: str,
    replica_id: str,
    host: str,
    port: int,
    insecure: bool,
    sans: list[str],
    raft_address: str | None = None,
    grpc_address: str | None = None,
    secret: str | None = None,
    ca: tuple[bytes, bytes] | None = None,
    admin_password_hash: str = "",
) -> tuple[str, str, bytes]:
    """Lay out the first replica of a cluster in `data` (new, or restored with the
    backup's secret and CA); (its config path, the cluster secret, the CA certificate).
    Raises ValueError when an address is taken here."""
    raft_address = raft_address or f"{host}:{port + 1000}"
    grpc_address = grpc_address or f"{host}:{port + 2000}"
    for address in (f"{host}:{port}", raft_address, grpc_address):
        if problem := ports.in_use(address):
            raise ValueError(problem)
    os.makedirs(data, exist_ok=True)
    secret = secret or secrets.token_urlsafe(32)
    ca_cert, ca_key = ca or pki.create_ca()
    pki.set_up_replica(
        pki.TlsFiles.under(data),
        ca_cert,
        ca_key,
        replica_id,
        [host, "localhost", "127.0.0.1", *sans],
    )
    path = os.path.join(data, "replica.toml")
    configfile.write(
        path,
        {
            "replica": {"id": replica_id, "data_dir": data},
            "http": {"host": host, "port": port, "insecure": insecure},
            "raft": {"address": raft_address, "secret": secret, "peers": []},
            "grpc": {"address": grpc_address},
            "auth": {"admin_password_hash": admin_password_hash},
        },
    )
    # For clients, a copy of the CA certificate alone: tls/ holds the CA key beside it,
    # which tools that read a whole directory (skopeo's --cert-dir) take for a client pair.
    client_ca = os.path.join(data, "ca.crt")
    with open(client_ca, "wb") as f:
        f.write(ca_cert)
    os.chmod(client_ca, 0o644)
    return path, secret, ca_cert


def run(args: argparse.Namespace) -> int:
    data = os.path.abspath(args.data)
    path = os.path.join(data, "replica.toml")
    if os.path.exists(path):
        return fail("install", f"{path} exists: this host already has a replica")
    password = args.admin_password or secrets.token_urlsafe(12)
    try:
        path, secret, ca_cert = first_replica(
            data,
            args.replica_id,
            args.host,
            args.port,
            args.insecure_http,
            args.san,
            args.raft_address,
            args.grpc_address,
            admin_password_hash=passwords.hash_password(password),
        )
    except ValueError as e:
        return fail("install", str(e))
    raft_address = configfile.read(path)["raft"]["address"]
    grpc_address = configfile.read(path)["grpc"]["address"]
    url = f"{'http' if args.insecure_http else 'https'}://{args.host}:{args.port}"
    client_ca = os.path.join(data, "ca.crt")
    token = join_tokens.issue(
        secret, int(time.time() * 1000), ca_fingerprint=pki.fingerprint(ca_cert)
    )
    secret_lines = (
        []
        if args.admin_password
        else [f"admin password: {password}  (change it with qreg user passwd admin)"]
    )
    secret_lines += [
        "join others (the token expires in an hour; qreg join-token makes another):",
        f"  qreg join --existing {url} --token {token} \\",
        f"      --replica-id replica-N --data DIR --host THAT_HOST --port {args.port}",
        "keep the token secret: it grants the cluster secret",
    ]
    hostport = f"{args.host}:{args.port}"
    print(f"cluster created; replica {args.replica_id} configured in {path}")
    print(f"start it:       qreg serve --config {path}")
    print(f"ports:          HTTP {args.port}, Raft {raft_address}, blobs (gRPC) {grpc_address}")
    print(f"cluster CA:     {client_ca} (any replica also serves it at {url}/ca)")
    print("clients:")
    print(f"  qreg login {url} -u admin --ca {client_ca}")
    print(f"  qreg status --config {path}")
    print(f"  skopeo login --cert-dir {data} -u admin {hostport}")
    print(
        f"  docker: mkdir -p /etc/docker/certs.d/{hostport} && "
        f"cp {client_ca} /etc/docker/certs.d/{hostport}/ca.crt"
    )
    if args.secrets_file:
        pki.write_private(
            os.path.abspath(args.secrets_file), "\n".join(secret_lines).encode() + b"\n"
        )
        print(f"admin password and join token: in {args.secrets_file} (readable by you only)")
    else:
        print("\n".join(secret_lines))
    return 0
