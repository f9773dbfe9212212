"""The caches `qreg up --caches` runs beside its replicas: config, certificate and
registration with the cluster, each under DATA/cache-NAME/."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from cli import configfile
from replica import pki
from replica.auth.tokens import TokenKeys


def write_config(
    data: str, name: str, port: int, upstreams: list[str], insecure: bool, max_bytes: int
) -> str:
    """DATA/cache-NAME/cache.toml, with a certificate from the cluster CA."""
    directory = os.path.join(data, f"cache-{name}")
    files = pki.TlsFiles.under(os.path.join(data, "replica-0"))
    with open(files.ca, "rb") as cert, open(files.ca_key, "rb") as key:
        ca_cert, ca_key = cert.read(), key.read()
    tls = os.path.join(directory, "tls")
    if not os.path.isfile(os.path.join(tls, "cache.crt")):
        cert_pem, key_pem = pki.issue(
            ca_cert, ca_key, f"cache-{name}", ["localhost", "127.0.0.1", "::1"]
        )
        pki.write_private(os.path.join(tls, "cache.crt"), cert_pem)
        pki.write_private(os.path.join(tls, "cache.key"), key_pem)
    pki.write_private(os.path.join(tls, "ca.crt"), ca_cert)  # public, but kept alike
    path = os.path.join(directory, "cache.toml")
    configfile.write(
        path,
        {
            "cache": {
                "name": name,
                "data_dir": os.path.join(directory, "storage"),
                "upstreams": upstreams,
                "ca": os.path.join(tls, "ca.crt"),
                "max_bytes": max_bytes,
            },
            "http": {
                "host": "127.0.0.1",
                "port": port,
                "insecure": insecure,
                "cert": os.path.join(tls, "cache.crt"),
                "key": os.path.join(tls, "cache.key"),
            },
        },
    )
    return path


def start(config: str, log_path: str) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "cache", "serve", "--config", config],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def register(data: str, url: str, name: str, cache_url: str, verify: object) -> None:
    """Register the cache with the cluster (once), as the admin: qreg up holds the CA key,
    so it signs itself an admin token rather than asking for the password again."""
    files = pki.TlsFiles.under(os.path.join(data, "replica-0"))
    with open(files.ca, "rb") as cert, open(files.ca_key, "rb") as key:
        token = TokenKeys(key.read(), cert.read(), "quorum-registry").issue(
            "admin", [{"type": "registry", "name": "api", "actions": ["*"]}]
        )
    headers = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(
        f"{url}/api/v0/content_caches",
        headers=headers,
        verify=verify,  # type: ignore[arg-type]
        timeout=10,
    )
    listed.raise_for_status()
    known = {c["name"]: c for c in listed.json()["content_caches"]}
    if name in known and known[name]["url"] == cache_url:
        return
    if name in known:
        httpx.delete(
            f"{url}/api/v0/content_caches/{name}",
            headers=headers,
            verify=verify,  # type: ignore[arg-type]
            timeout=10,
        ).raise_for_status()
    r = httpx.post(
        f"{url}/api/v0/content_caches",
        headers=headers,
        verify=verify,  # type: ignore[arg-type]
        timeout=10,
        json={"name": name, "url": cache_url, "region": "local"},
    )
    r.raise_for_status()
