"""`qreg up`: start a local cluster in the foreground, with embedded defaults.

Replica i serves on 127.0.0.1:P+i with its data under DIR/replica-i. One line
beginning `ready ` lists the URLs once every replica answers /v2/. SIGINT or
SIGTERM stops every replica cleanly.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from typing import Any

import httpx

from cli import configfile, local_caches, ports
from replica import pki
from replica.auth import passwords


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "up",
        help="start a local cluster in the foreground",
        description="Start a local registry cluster on loopback ports, for trying the product "
        "and for tests. Replica i serves on 127.0.0.1:PORT+i with its data under "
        "DATA/replica-i; a line starting with 'ready ' lists the URLs once every "
        "replica answers. Ctrl-C stops it cleanly; run it again to resume with the "
        "same data.",
        epilog="example:\n  qreg up --data ./data --port 5000\n"
        "  skopeo login --cert-dir ./data -u admin 127.0.0.1:5000\n"
        "  skopeo copy --dest-cert-dir ./data oci:./img docker://127.0.0.1:5000/img:1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        metavar="N",
        help="number of replicas (default 1); 3 survive the loss of one, 5 of two",
    )
    p.add_argument(
        "--data", default="./data", metavar="DIR", help="data directory (default ./data)"
    )
    p.add_argument(
        "--port",
        type=int,
        default=5000,
        metavar="P",
        help="HTTP port of replica 0; replica i gets P+i (default 5000)",
    )
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP, for local trials (default: HTTPS with a certificate "
        "from the cluster CA, written to DATA/ca.crt)",
    )
    p.add_argument(
        "--admin-password",
        metavar="PW",
        help="password of the admin account, created on the first run (default: a "
        "generated one, printed once)",
    )
    p.add_argument(
        "--caches",
        default="",
        metavar="NAME[,NAME...]",
        help="also run a cache node per name on the ports after the replicas' "
        "(P+N, P+N+1, ...), registered with the cluster; give users one with "
        "qreg user set-cache USER NAME",
    )
    p.add_argument(
        "--cache-max-bytes",
        type=int,
        default=10 << 30,
        metavar="BYTES",
        help="disk budget of each cache (default 10 GiB)",
    )
    p.set_defaults(func=run)


_LOCAL_NAMES = ["localhost", "127.0.0.1", "::1"]


def _cluster_ca(data: str, replicas: int) -> tuple[bytes, bytes]:
    """The local cluster's CA: kept by its replicas (tls/ca.*), created on the first run.
    DATA/ca.crt is a copy for clients; the key never sits beside it, since a
    certs.d directory would take a lone *.key for a client key."""
    for i in range(replicas):
        files = pki.TlsFiles.under(os.path.join(data, f"replica-{i}"))
        if os.path.isfile(files.ca) and os.path.isfile(files.ca_key):
            with open(files.ca, "rb") as cert, open(files.ca_key, "rb") as key:
                return cert.read(), key.read()
    return pki.create_ca("Quorum Registry (local)")


def write_configs(
    data: str,
    replicas: int,
    port: int,
    insecure: bool = False,
    admin_password_hash: str = "",
    secret: str | None = None,
    ca: tuple[bytes, bytes] | None = None,
) -> list[str]:
    """One config file per replica, with certificates from the cluster CA. Raft
    addresses, the secret and the CA are chosen on the first run (or given, by a
    restore) and then kept, so a restarted cluster finds its members again."""
    os.makedirs(data, exist_ok=True)
    ca_cert, ca_key = ca or _cluster_ca(data, replicas)
    with open(os.path.join(data, "ca.crt"), "wb") as f:
        f.write(ca_cert)
    existing = [
        configfile.read(os.path.join(data, f"replica-{i}", "replica.toml")) for i in range(replicas)
    ]
    secret = next(
        (c["raft"]["secret"] for c in existing if c.get("raft", {}).get("secret")),
        secret or secrets.token_urlsafe(32),
    )
    http = range(port, port + replicas + 16)  # the replicas' and their caches' HTTP ports
    addresses = [
        c.get("raft", {}).get("address") or f"127.0.0.1:{ports.free_block(avoid=http)}"
        for c in existing
    ]
    grpc = [
        c.get("grpc", {}).get("address") or f"127.0.0.1:{ports.free_block(avoid=http)}"
        for c in existing
    ]
    admin = next(
        (
            c["auth"]["admin_password_hash"]
            for c in existing
            if c.get("auth", {}).get("admin_password_hash")
        ),
        admin_password_hash,
    )
    paths = []
    for i in range(replicas):
        directory = os.path.join(data, f"replica-{i}")
        os.makedirs(directory, exist_ok=True)
        files = pki.TlsFiles.under(directory)
        if not os.path.isfile(files.cert) or not os.path.isfile(files.ca):
            pki.set_up_replica(files, ca_cert, ca_key, f"replica-{i}", _LOCAL_NAMES)
        path = os.path.join(directory, "replica.toml")
        configfile.write(
            path,
            {
                "replica": {"id": f"replica-{i}", "data_dir": directory},
                "http": {"host": "127.0.0.1", "port": port + i, "insecure": insecure},
                "raft": {
                    "address": addresses[i],
                    "secret": secret,
                    "peers": [a for j, a in enumerate(addresses) if j != i],
                },
                "grpc": {"address": grpc[i]},
                "auth": {"admin_password_hash": admin},
            },
        )
        paths.append(path)
    return paths


def _wait_until_up(
    url: str, process: subprocess.Popen[bytes], timeout: float, verify: ssl.SSLContext
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            # 401: up, with authentication on.
            if httpx.get(url + "/v2/", timeout=1.0, verify=verify).status_code in (200, 401):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def _register_cache(data: str, url: str, name: str, cache_url: str, verify: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 60
    while True:  # the cluster may still be electing its leader
        try:
            local_caches.register(data, url, name, cache_url, verify)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run(args: argparse.Namespace) -> int:
    if args.replicas < 1 or args.replicas > 9:
        print(
            "qreg up: --replicas must be between 1 and 9 (3, 5 or 7 tolerate 1, 2 or 3 failures)",
            file=sys.stderr,
        )
        return 2
    data = os.path.abspath(args.data)
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    first_run = not os.path.exists(os.path.join(data, "replica-0", "replica.toml"))
    password = args.admin_password
    if first_run and not password:
        password = secrets.token_urlsafe(12)
        print(f"admin password (shown once): {password}", flush=True)
    hashed = passwords.hash_password(password) if first_run and password else ""
    configs = write_configs(data, args.replicas, args.port, args.insecure_http, hashed)
    scheme = "http" if args.insecure_http else "https"
    for i, config in enumerate(configs):
        log = open(os.path.join(data, f"replica-{i}", "replica.log"), "ab")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--config", config],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        urls.append(f"{scheme}://127.0.0.1:{args.port + i}")
    verify = configfile.verify(configs[0])
    try:
        for url, process in zip(urls, processes, strict=False):
            if not _wait_until_up(url, process, 90.0, verify):
                print(
                    f"qreg up: the replica at {url} did not start; see "
                    f"{data}/replica-*/replica.log",
                    file=sys.stderr,
                )
                return 1
        cache_urls = []
        for k, name in enumerate(n for n in args.caches.split(",") if n):
            port = args.port + args.replicas + k
            config = local_caches.write_config(
                data, name, port, urls, args.insecure_http, args.cache_max_bytes
            )
            cache_url = f"{scheme}://127.0.0.1:{port}"
            processes.append(
                local_caches.start(config, os.path.join(data, f"cache-{name}", "cache.log"))
            )
            if not _wait_until_up(cache_url, processes[-1], 60.0, verify):
                print(
                    f"qreg up: the cache {name} did not start; see {data}/cache-{name}/cache.log",
                    file=sys.stderr,
                )
                return 1
            _register_cache(data, urls[0], name, cache_url, verify)
            cache_urls.append(f"{name}={cache_url}")
        # Caches follow the replicas as NAME=URL.
        print("ready " + " ".join(urls + cache_urls), flush=True)
        host = f"127.0.0.1:{args.port}"
        if args.insecure_http:
            print(
                f"try: skopeo login --tls-verify=false -u admin {host}; skopeo copy "
                f"--dest-tls-verify=false oci:DIR docker://{host}/NAME:TAG",
                flush=True,
            )
        else:
            print(
                f"the cluster CA is {data}/ca.crt; try: skopeo login --cert-dir {data} -u admin "
                f"{host}; skopeo copy --dest-cert-dir {data} oci:DIR docker://{host}/NAME:TAG",
                flush=True,
            )
        # A replica that dies (or is killed by a test) does not stop the others.
        while not stopping and any(p.poll() is None for p in processes):
            time.sleep(0.2)
        return 0 if stopping else 1
    finally:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
