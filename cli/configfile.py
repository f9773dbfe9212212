"""Reading and writing replica config files (TOML with tables of strings, ints and lists)."""

from __future__ import annotations

import json
import os
import ssl
import tomllib
from typing import Any


def read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}


def write(path: str, document: dict[str, dict[str, Any]]) -> None:
    """Write atomically, readable by the owner only: it holds the cluster secret."""
    lines = []
    for section, table in document.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            # JSON strings, ints and lists of strings are valid TOML values.
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)


class MissingConfig(Exception):
    """A command's config file does not exist (qreg prints the message and exits 1)."""


def member(path: str) -> tuple[str, str | None]:
    """A replica's HTTP URL and the cluster secret, from its config file (or, as the
    replica itself reads it, QREG_RAFT_SECRET or the file QREG_RAFT_SECRET_FILE names)."""
    if not os.path.isfile(path):
        raise MissingConfig(
            f"no replica config at {path}: give a member's config file with --config"
        )
    config = read(path)
    http = config.get("http", {})
    scheme = "http" if http.get("insecure") else "https"
    url = http.get("url") or f"{scheme}://{http.get('host', '127.0.0.1')}:{http.get('port', 5000)}"
    secret = config.get("raft", {}).get("secret") or os.environ.get("QREG_RAFT_SECRET")
    if not secret and os.environ.get("QREG_RAFT_SECRET_FILE"):
        with open(os.environ["QREG_RAFT_SECRET_FILE"]) as f:
            secret = f.read().rstrip("\r\n")
    return url, secret


def ca_path(path: str) -> str:
    """The cluster CA certificate of the replica whose config is at `path`."""
    config = read(path)
    default = os.path.join(
        config.get("replica", {}).get("data_dir", os.path.dirname(path)), "tls", "ca.crt"
    )
    return str(config.get("tls", {}).get("ca") or default)


def verify(path: str) -> ssl.SSLContext:
    """What an HTTPS client of that replica trusts: the cluster CA and the system's roots."""
    context = ssl.create_default_context()
    if os.path.isfile(ca_path(path)):
        context.load_verify_locations(ca_path(path))
    return context
