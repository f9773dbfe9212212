"""What a request handler reaches of its replica, typed: built once, when the replica
starts (the app's lifespan), and read through `context(request)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from replica.auth.grants import GrantSigner, GrantVerifier
    from replica.auth.service import AuthService
    from replica.blobs.scrub import Scrubber
    from replica.blobs.store_health import StoreHealth
    from replica.blobs.sync import BlobSync
    from replica.cache_redirect import CacheHealth
    from replica.divergence import DivergenceMonitor
    from replica.gc.collector import Collector
    from replica.gc.schedule import Schedule
    from replica.gc.sweeper import FileSweeper
    from replica.metrics import Metrics
    from replica.mirror.proxy import Proxies
    from replica.refusal_events import RefusalEvents
    from replica.registry import Registry
    from replica.removal import RemovalWatch
    from replica.scan.scanner import Scanner
    from replica.trust.service import TrustService
    from replica.trust.status import SignedTags
    from replica.webhooks.deliverer import Deliverer


@dataclass(frozen=True)
class ReplicaContext:
    registry: Registry
    auth: AuthService | None  # None without the CA key that signs tokens
    metrics: Metrics
    grant_signer: GrantSigner | None
    grant_verifier: GrantVerifier | None
    cache_health: CacheHealth
    blob_sync: BlobSync
    scrubber: Scrubber
    store_health: StoreHealth
    divergence: DivergenceMonitor
    removal: RemovalWatch
    collector: Collector
    gc_schedule: Schedule
    sweeper: FileSweeper
    scanner: Scanner
    trust: TrustService | None  # None without the cluster secret that seals its keys
    signed_tags: SignedTags  # what the trust data signs; the signed-only policy
    secret: str | None  # the cluster secret
    internal_token: str | None  # derived from it: the cluster's own credential
    ca_path: str
    ca_key_path: str
    public_url: str
    redirect_clients: tuple[str, ...]
    refusals: RefusalEvents
    webhooks: Deliverer | None = None  # None without the cluster secret that seals secrets
    proxies: Proxies | None = None  # proxy repositories; None as webhooks
    # /api/v0/replicas answers shared by users who are not operators (api/cluster.py).
    shared: dict[str, Any] = field(default_factory=dict)


def context(request: Request) -> ReplicaContext:
    return request.app.state.context  # type: ignore[no-any-return]
