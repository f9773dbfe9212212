"""`qreg install`: set up the first replica of a new cluster on this host."""

from __future__ import annotations

import argparse
import os
import secrets
import time
from typing import Any

from cli import configfile, ports
from cli.output import fail
from replica import pki
from replica.auth import passwords
from replica import join_tokens


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "install", help="set up the first replica of a new cluster on this host",
        description="Create a new cluster: a cluster id and secret, this host's replica "
                    "config and data directory. It prints how to start the replica and how "
                    "other hosts join it.",
        epilog="example:\n  qreg install --data /var/lib/qreg --host 10.0.0.1 --port 5000\n"
               "  qreg serve --config /var/lib/qreg/replica.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="data directory of this replica (new)")
    p.add_argument("--replica-id", default="replica-0", help="this replica's id")
    p.add_argument("--host", default="127.0.0.1", help="address to serve HTTP on and advertise")
    p.add_argument("--port", type=int, default=5000, help="HTTP port")
    p.add_argument("--raft-address", help="host:port for Raft (default: HOST:PORT+1000)")
    p.add_argument("--grpc-address", help="host:port of the blob service (default: HOST:PORT+2000)")
    p.add_argument("--san", action="append", default=[], metavar="NAME",
                   help="another host name or address clients use for this replica, for its "
                        "certificate (repeatable; --host, localhost and 127.0.0.1 are in it)")
    p.add_argument("--admin-password", metavar="PW",
                   help="password of the admin account the cluster creates when it first "
                        "starts (default: a generated one, printed once)")
    p.add_argument("--insecure-http", action="store_true",
                   help="serve plain HTTP to clients (local trials only; peers still use mutual TLS)")
    p.add_argument("--secrets-file", metavar="FILE",
                   help="write the generated admin password and the join token to FILE "
                        "(mode 0600) instead of printing them: for containers, whose output "
                        "ends up in logs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = os.path.abspath(args.data)
    path = os.path.join(data, "replica.toml")
    if os.path.exists(path):
        return fail("install", f"{path} exists: this host already has a replica")
    raft_address = args.raft_address or f"{args.host}:{args.port + 1000}"
    grpc_address = args.grpc_address or f"{args.host}:{args.port + 2000}"
    for address in (f"{args.host}:{args.port}", raft_address, grpc_address):
        if problem := ports.in_use(address):
            return fail("install", problem)
    os.makedirs(data, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    password = args.admin_password or secrets.token_urlsafe(12)
    ca_cert, ca_key = pki.create_ca()
    files = pki.TlsFiles.under(data)
    pki.set_up_replica(files, ca_cert, ca_key, args.replica_id,
                       [args.host, "localhost", "127.0.0.1", *args.san])
    configfile.write(path, {
        "replica": {"id": args.replica_id, "data_dir": data},
        "http": {"host": args.host, "port": args.port, "insecure": args.insecure_http},
        "raft": {"address": raft_address, "secret": secret, "peers": []},
        "grpc": {"address": grpc_address},
        "auth": {"admin_password_hash": passwords.hash_password(password)},
    })
    url = f"{'http' if args.insecure_http else 'https'}://{args.host}:{args.port}"
    # For clients, a copy of the CA certificate alone: tls/ holds the CA key beside it,
    # which tools that read a whole directory (skopeo's --cert-dir) take for a client pair.
    client_ca = os.path.join(data, "ca.crt")
    with open(client_ca, "wb") as f:
        f.write(ca_cert)
    os.chmod(client_ca, 0o644)
    token = join_tokens.issue(secret, int(time.time() * 1000),
                              ca_fingerprint=pki.fingerprint(ca_cert))
    secret_lines = [] if args.admin_password else [
        f"admin password: {password}  (change it with qreg user passwd admin)"]
    secret_lines += [
        "join others (the token expires in an hour; qreg join-token makes another):",
        f"  qreg join --existing {url} --token {token} \\",
        f"      --replica-id replica-N --data DIR --host THAT_HOST --port {args.port}",
        "keep the token secret: it grants the cluster secret"]
    hostport = f"{args.host}:{args.port}"
    print(f"cluster created; replica {args.replica_id} configured in {path}")
    print(f"start it:       qreg serve --config {path}")
    print(f"ports:          HTTP {args.port}, Raft {raft_address}, "
          f"blobs (gRPC) {grpc_address}")
    print(f"cluster CA:     {client_ca} (any replica also serves it at {url}/ca)")
    print("clients:")
    print(f"  qreg login {url} -u admin --ca {client_ca}")
    print(f"  qreg status --config {path}")
    print(f"  skopeo login --cert-dir {data} -u admin {hostport}")
    print(f"  docker: mkdir -p /etc/docker/certs.d/{hostport} && "
          f"cp {client_ca} /etc/docker/certs.d/{hostport}/ca.crt")
    if args.secrets_file:
        pki.write_private(os.path.abspath(args.secrets_file), "\n".join(secret_lines).encode()
                          + b"\n")
        print(f"admin password and join token: in {args.secrets_file} (readable by you only)")
    else:
        print("\n".join(secret_lines))
    return 0
