"""The cache node's config: one TOML file, read once at start.

[cache]
name = "eu"                      # as registered with the cluster (qreg cache add)
data_dir = "/var/lib/qreg-cache"
max_bytes = 107374182400         # disk budget; least recently used blobs go first
upstreams = ["https://replica-1:5000", "https://replica-2:5000"]  # or another cache
ca = "/etc/qreg/ca.crt"          # the cluster CA: checks grants (and upstream TLS)
upstream_ca = ""                 # another bundle for the upstream hop, if it differs

[http]
host = "0.0.0.0"
port = 5443
insecure = false                 # plain HTTP, for local trials
cert = "/etc/qreg/cache.crt"
key = "/etc/qreg/cache.key"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class CacheConfig:
    name: str
    data_dir: str
    upstreams: tuple[str, ...]
    ca: str
    max_bytes: int = 10 << 30
    upstream_ca: str = ""
    host: str = "127.0.0.1"
    port: int = 5443
    insecure: bool = False
    cert: str = ""
    key: str = ""


def load(path: str) -> CacheConfig:
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    cache, http = document.get("cache", {}), document.get("http", {})
    for key in ("name", "data_dir", "upstreams", "ca"):
        if not cache.get(key):
            raise ConfigError(f"cache.{key} is required")
    if not isinstance(cache["upstreams"], list) or not all(
        isinstance(u, str) and u.startswith(("http://", "https://")) for u in cache["upstreams"]
    ):
        raise ConfigError("cache.upstreams: a list of http(s):// URLs")
    max_bytes = cache.get("max_bytes", 10 << 30)
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigError(f"cache.max_bytes: a positive number of bytes (got {max_bytes!r})")
    insecure = bool(http.get("insecure", False))
    if not insecure and not (http.get("cert") and http.get("key")):
        raise ConfigError("http.cert and http.key are required unless http.insecure = true")
    return CacheConfig(
        name=str(cache["name"]),
        data_dir=str(cache["data_dir"]),
        upstreams=tuple(u.rstrip("/") for u in cache["upstreams"]),
        ca=str(cache["ca"]),
        max_bytes=max_bytes,
        upstream_ca=str(cache.get("upstream_ca", "")),
        host=str(http.get("host", "127.0.0.1")),
        port=int(http.get("port", 5443)),
        insecure=insecure,
        cert=str(http.get("cert", "")),
        key=str(http.get("key", "")),
    )
