"""The replica's configuration: one frozen object, read from TOML, overridable by environment.

Example file:

    [replica]
    id = "replica-0"
    data_dir = "./data/replica-0"

    [http]
    host = "127.0.0.1"
    port = 5000

    [raft]
    address = "127.0.0.1:6000"   # where peers reach this replica's Raft port
    peers = []                    # the other replicas' Raft addresses

Every key can be overridden by an environment variable QREG_<SECTION>_<KEY>,
for example QREG_HTTP_PORT=5001, or by QREG_<SECTION>_<KEY>_FILE naming a file that
holds the value (Docker's and Kubernetes' secrets: QREG_RAFT_SECRET_FILE=/run/secrets/x),
so a secret never appears on a command line or in the environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the key."""


@dataclass(frozen=True)
class ReplicaConfig:
    replica_id: str
    data_dir: str
    http_host: str = "127.0.0.1"
    http_port: int = 5000
    http_url: str = ""  # how peers reach this replica; default http://host:port
    # How clients reach the registry (a load balancer's URL, say): the token realm in
    # every 401 challenge points there. Empty: the request's own host, if it is one of
    # this replica's certificate names, else http.url.
    http_public_url: str = ""
    # Request headers must arrive within this many seconds (slow-header clients are cut
    # off); at most this many connections at once, 503 beyond (see http_protocol.py).
    http_header_timeout_s: float = 10.0
    http_max_connections: int = 1000
    raft_address: str = "127.0.0.1:6000"
    grpc_address: str = ""  # the blob service for peers; empty: none (a lone replica)
    raft_peers: tuple[str, ...] = field(default_factory=tuple)
    raft_secret: str | None = None
    # Only for storage with a battery-backed write cache: acknowledged writes can be
    # lost in a power cut of a majority, and a replica may vote twice in one term.
    raft_unsafe_skip_fsync: bool = False
    # Log entries between snapshots (a snapshot copies the whole metadata state).
    raft_compact_every: int = 20000
    log_level: str = "info"
    # HTTPS unless http.insecure; the cluster CA and this replica's certificate
    # (default: DATA/tls/, see pki.py) also serve mutual TLS between replicas.
    http_insecure: bool = False
    tls_ca: str = ""
    tls_ca_key: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # A certificate of your own for clients (HTTPS); peers still use tls.cert.
    tls_public_cert: str = ""
    tls_public_key: str = ""
    # Docker token authentication on every /v2 request. Off only for a registry that
    # should be open to anyone on its network. The service name goes in tokens.
    auth_enabled: bool = True
    auth_service: str = "quorum-registry"
    # Creates the `admin` account (global admin) when the cluster has none.
    auth_admin_password_hash: str = ""
    # Upload sessions one account may hold open at once (429 beyond), and how long an
    # untouched session lives (seconds; distribution purges after a week too).
    uploads_max_per_user: int = 64
    uploads_expire_after_s: float = 7 * 24 * 3600.0
    # Replicas that keep each blob (0: all; never fewer than a majority). Set the
    # same value on every replica.
    blobs_replication_factor: int = 0
    # Where blob bytes live: "local" (this replica's disk, copied to peers) or "s3" (one
    # bucket every replica shares; [s3] says which). With s3 and blobs.redirect, pulls
    # answer 307 to a URL presigned for redirect_s seconds: bytes skip the replica.
    blobs_backend: str = "local"
    blobs_redirect: bool = False
    blobs_redirect_s: int = 1200
    s3_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    # Empty: boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an
    # instance role). QREG_S3_SECRET_KEY_FILE reads the secret from a file.
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_path_style: bool = True
    s3_ca_bundle: str = ""
    s3_prefix: str = ""
    # How often (seconds; 0: only at start) a replica recounts its metadata digest to
    # catch changes behind the state machine's back (divergence.py).
    state_verify_interval_s: float = 3600.0
    # Every replica re-hashes its blobs this often (seconds; 0: never) at this pace.
    scrub_interval_s: float = 86400.0
    scrub_rate_mib_s: float = 200.0
    # Garbage collection: a blob linked within this long is never collected (a push
    # uploads its layers before its manifest).
    gc_grace_s: float = 3600.0
    # A user's blob pulls go to their cache only from clients known to follow
    # redirects (a substring of the User-Agent, any case); any other client, curl
    # without -L say, gets the blob from the replica.
    caches_redirect_clients: tuple[str, ...] = (
        "docker/",
        "containerd/",
        "containers/",
        "skopeo/",
        "podman/",
        "buildah/",
        "cri-o/",
        "oras",
        "go-containerregistry/",
        "crane/",
        "helm/",
        "buildkit/",
        "kaniko/",
        "go-http-client/",
        "python-requests/",
    )

    def path(self, *parts: str) -> str:
        return os.path.join(self.data_dir, *parts)

    def check_raft_secret(self) -> None:
        """Without the secret, pysyncobj unpickles whatever reaches the Raft port."""
        if not self.raft_secret:
            raise ConfigError(
                "raft.secret is required: without it anyone who reaches the "
                "Raft port runs code on this replica (qreg install, join, up and "
                "restore write one; QREG_RAFT_SECRET sets it)"
            )

    def check_tls_files(self) -> None:
        """Fail early, naming the key, when a TLS file this replica needs is missing."""
        needed = []
        if self.grpc_address or not self.http_insecure or self.auth_enabled:
            needed += [
                ("tls.ca", self.tls_ca),
                ("tls.ca_key", self.tls_ca_key),
                ("tls.cert", self.tls_cert),
                ("tls.key", self.tls_key),
            ]
        if self.tls_public_cert:
            needed += [
                ("tls.public_cert", self.tls_public_cert),
                ("tls.public_key", self.tls_public_key),
            ]
        for key, path in needed:
            if not os.path.isfile(path):
                raise ConfigError(
                    f"{key}: {path} does not exist (qreg install, qreg join and "
                    "qreg up create the cluster's certificates)"
                )


# (section, key) -> (field name, type)
_KEYS: dict[tuple[str, str], tuple[str, type]] = {
    ("replica", "id"): ("replica_id", str),
    ("replica", "data_dir"): ("data_dir", str),
    ("replica", "log_level"): ("log_level", str),
    ("http", "host"): ("http_host", str),
    ("http", "port"): ("http_port", int),
    ("http", "url"): ("http_url", str),
    ("http", "public_url"): ("http_public_url", str),
    ("http", "header_timeout_s"): ("http_header_timeout_s", float),
    ("http", "max_connections"): ("http_max_connections", int),
    ("raft", "address"): ("raft_address", str),
    ("grpc", "address"): ("grpc_address", str),
    ("raft", "peers"): ("raft_peers", tuple),
    ("raft", "secret"): ("raft_secret", str),
    ("raft", "unsafe_skip_fsync"): ("raft_unsafe_skip_fsync", bool),
    ("raft", "compact_every"): ("raft_compact_every", int),
    ("http", "insecure"): ("http_insecure", bool),
    ("tls", "ca"): ("tls_ca", str),
    ("tls", "ca_key"): ("tls_ca_key", str),
    ("tls", "cert"): ("tls_cert", str),
    ("tls", "key"): ("tls_key", str),
    ("tls", "public_cert"): ("tls_public_cert", str),
    ("tls", "public_key"): ("tls_public_key", str),
    ("auth", "enabled"): ("auth_enabled", bool),
    ("auth", "service"): ("auth_service", str),
    ("auth", "admin_password_hash"): ("auth_admin_password_hash", str),
    ("uploads", "max_per_user"): ("uploads_max_per_user", int),
    ("uploads", "expire_after_s"): ("uploads_expire_after_s", float),
    ("blobs", "replication_factor"): ("blobs_replication_factor", int),
    ("blobs", "backend"): ("blobs_backend", str),
    ("blobs", "redirect"): ("blobs_redirect", bool),
    ("blobs", "redirect_s"): ("blobs_redirect_s", int),
    ("s3", "endpoint"): ("s3_endpoint", str),
    ("s3", "bucket"): ("s3_bucket", str),
    ("s3", "region"): ("s3_region", str),
    ("s3", "access_key"): ("s3_access_key", str),
    ("s3", "secret_key"): ("s3_secret_key", str),
    ("s3", "path_style"): ("s3_path_style", bool),
    ("s3", "ca_bundle"): ("s3_ca_bundle", str),
    ("s3", "prefix"): ("s3_prefix", str),
    ("state", "verify_interval_s"): ("state_verify_interval_s", float),
    ("scrub", "interval_s"): ("scrub_interval_s", float),
    ("scrub", "rate_mib_s"): ("scrub_rate_mib_s", float),
    ("gc", "grace_s"): ("gc_grace_s", float),
    ("caches", "redirect_clients"): ("caches_redirect_clients", tuple),
}
_ADDRESS = re.compile(r"[A-Za-z0-9.\-]+:\d{1,5}")


def _read_secret(path: str, variable: str) -> str:
    try:
        with open(path) as f:
            return f.read().rstrip("\r\n")
    except OSError as e:
        raise ConfigError(f"{variable}: cannot read {path}: {e.strerror}") from None


def load(
    path: str | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> ReplicaConfig:
    """Read a config file (optional), then environment variables, then keyword overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as f:
                document = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        for section, table in document.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{section}: expected a [{section}] table")
            for key, value in table.items():
                name = _field(section, key)
                values[name] = _coerce(section, key, value)
    for (section, key), (name, _) in _KEYS.items():
        env = f"QREG_{section.upper()}_{key.upper()}"
        if env + "_FILE" in environ:
            environ = {**environ, env: _read_secret(environ[env + "_FILE"], env + "_FILE")}
        if env in environ:
            raw: Any = environ[env]
            if name == "raft_peers":
                raw = [p for p in raw.split(",") if p]
            values[name] = _coerce(section, key, raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    for required in ("replica_id", "data_dir"):
        if not values.get(required):
            section, key = next(sk for sk, (n, _) in _KEYS.items() if n == required)
            raise ConfigError(f"{section}.{key} is required")
    config = ReplicaConfig(**values)
    if not config.http_url:
        scheme = "http" if config.http_insecure else "https"
        config = dataclasses.replace(
            config, http_url=f"{scheme}://{config.http_host}:{config.http_port}"
        )
    tls = os.path.join(config.data_dir, "tls")
    config = dataclasses.replace(
        config,
        tls_ca=config.tls_ca or os.path.join(tls, "ca.crt"),
        tls_ca_key=config.tls_ca_key or os.path.join(tls, "ca.key"),
        tls_cert=config.tls_cert or os.path.join(tls, "replica.crt"),
        tls_key=config.tls_key or os.path.join(tls, "replica.key"),
    )
    if bool(config.tls_public_cert) != bool(config.tls_public_key):
        raise ConfigError("tls.public_cert and tls.public_key go together")
    for address, key in (
        [(config.raft_address, "raft.address")]
        + [(p, "raft.peers") for p in config.raft_peers]
        + ([(config.grpc_address, "grpc.address")] if config.grpc_address else [])
    ):
        if not _ADDRESS.fullmatch(address):
            raise ConfigError(f"{key}: {address!r} is not host:port")
    if config.http_public_url and not re.fullmatch(r"https?://[^/\s]+", config.http_public_url):
        raise ConfigError(
            f"http.public_url: {config.http_public_url!r} is not scheme://host[:port] (no path)"
        )
    if config.blobs_replication_factor < 0:
        raise ConfigError(
            "blobs.replication_factor: 0 (every replica) or more "
            f"(got {config.blobs_replication_factor})"
        )
    _check_blobs(config)
    if config.gc_grace_s < 0:
        raise ConfigError(f"gc.grace_s: 0 or more seconds (got {config.gc_grace_s})")
    if config.scrub_rate_mib_s <= 0:
        raise ConfigError(f"scrub.rate_mib_s: must be above 0 (got {config.scrub_rate_mib_s})")
    if config.raft_compact_every < 100:
        raise ConfigError(f"raft.compact_every: 100 or more (got {config.raft_compact_every})")
    if config.uploads_max_per_user < 1 or config.uploads_expire_after_s <= 0:
        raise ConfigError(
            "uploads.max_per_user is 1 or more and uploads.expire_after_s above 0 "
            f"(got {config.uploads_max_per_user}, {config.uploads_expire_after_s})"
        )
    if config.http_header_timeout_s <= 0:
        raise ConfigError(
            f"http.header_timeout_s: must be above 0 (got {config.http_header_timeout_s})"
        )
    if config.http_max_connections < 1:
        raise ConfigError(f"http.max_connections: at least 1 (got {config.http_max_connections})")
    if not 0 < config.http_port < 65536:
        raise ConfigError(f"http.port: {config.http_port} is not a TCP port")
    return config


def _check_blobs(config: ReplicaConfig) -> None:
    if config.blobs_backend not in ("local", "s3"):
        raise ConfigError(f"blobs.backend: 'local' or 's3' (got {config.blobs_backend!r})")
    if config.blobs_backend == "local":
        if config.blobs_redirect:
            raise ConfigError("blobs.redirect needs blobs.backend = 's3'")
        return
    if not config.s3_bucket:
        raise ConfigError("s3.bucket is required with blobs.backend = 's3'")
    if config.s3_endpoint and not re.fullmatch(r"https?://[^/\s]+/?", config.s3_endpoint):
        raise ConfigError(f"s3.endpoint: {config.s3_endpoint!r} is not scheme://host[:port]")
    if bool(config.s3_access_key) != bool(config.s3_secret_key):
        raise ConfigError("s3.access_key and s3.secret_key go together (or neither)")
    if config.s3_ca_bundle and not os.path.isfile(config.s3_ca_bundle):
        raise ConfigError(f"s3.ca_bundle: {config.s3_ca_bundle} does not exist")
    if not 1 <= config.blobs_redirect_s <= 7 * 86400:  # SigV4 URLs live a week at most
        raise ConfigError(f"blobs.redirect_s: 1 to 604800 seconds (got {config.blobs_redirect_s})")


def _field(section: str, key: str) -> str:
    if (section, key) not in _KEYS:
        known = ", ".join(f"{s}.{k}" for s, k in _KEYS)
        raise ConfigError(f"{section}.{key}: unknown setting (known: {known})")
    return _KEYS[(section, key)][0]


def _coerce(section: str, key: str, value: Any) -> Any:
    name, kind = _KEYS[(section, key)]
    try:
        if kind is tuple:
            if not isinstance(value, (list, tuple)):
                raise TypeError("expected a list")
            return tuple(str(v) for v in value)
        if kind is int and isinstance(value, str):
            return int(value)
        if kind is float and isinstance(value, (str, int)) and not isinstance(value, bool):
            return float(value)
        if kind is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            return value.lower() in ("true", "1")
        if not isinstance(value, kind):
            raise TypeError(f"expected {kind.__name__}")
        return value
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{section}.{key}: {e} (got {value!r})") from None
