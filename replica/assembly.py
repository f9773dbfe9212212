"""Assembling a running replica: its metadata store and Raft node, blob store and
services, token service and background tasks, in order; the context handlers read
(replica/context.py); and taking them down again in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator

from consensus import MetadataState, RaftNode, accounts, gc
from proto import commands_pb2 as pb
from replica import cert_watch, pki
from replica.auth import grants
from replica.auth.directory import Directory
from replica.auth.realm import RealmPolicy
from replica.auth.service import AuthService
from replica.auth.tokens import TokenKeys
from replica.blobs import s3purge
from replica.blobs.backend import blob_store
from replica.blobs.s3store import S3BlobStore
from replica.blobs.scrub import Scrubber
from replica.blobs.store_health import StoreHealth
from replica.blobs.sync import BlobSync
from replica.blobs.transfer import BlobClient, BlobServer
from replica.blobs.uploads import UploadSessions
from replica.cache_redirect import CacheHealth
from replica.config import ReplicaConfig
from replica.context import ReplicaContext
from replica.divergence import DivergenceMonitor
from replica.errors import AlreadyExists, Unavailable
from replica.gc.collector import Collector
from replica.gc.schedule import Schedule
from replica.gc.sweeper import FileSweeper
from replica.internal_auth import internal_token
from replica.joining import become_member
from replica.joining import pending as pending_join
from replica.metrics import Metrics
from replica.mirror.importer import Importer
from replica.mirror.proxy import Proxies
from replica.peers import PeerClient
from replica.pki import TlsFiles
from replica.refusal_events import RefusalEvents
from replica.registry import Registry
from replica.removal import RemovalWatch
from replica.scan.scanner import Scanner
from replica.snapshot_fetch import make_fetcher
from replica.trust.keys import KeySeal
from replica.trust.service import TrustService
from replica.trust.status import SignedTags
from replica.webhooks.deliverer import Deliverer

log = logging.getLogger("qreg.replica")


@contextlib.asynccontextmanager
async def running(config: ReplicaConfig, metrics: Metrics) -> AsyncIterator[ReplicaContext]:
    state = MetadataState(config.path("metadata"))
    store = blob_store(config)
    # Told of collections from the first entry Raft applies (a returning replica
    # catches up on them before it serves).
    sweeper = FileSweeper(config.replica_id, store, state, metrics)
    state.on_collect = sweeper.on_collect
    raft = RaftNode(
        state,
        config.path("raft"),
        config.raft_address,
        list(config.raft_peers),
        password=config.raft_secret or "",
        unsafe_skip_fsync=config.raft_unsafe_skip_fsync,
        compact_every=config.raft_compact_every,
        fetch_snapshot=make_fetcher(
            state, config.raft_secret, config.tls_ca if os.path.isfile(config.tls_ca) else None
        ),
    )
    sweeper.is_leader = raft.is_leader
    joining = None
    if existing := pending_join(config.data_dir):
        joining = asyncio.create_task(
            become_member(
                config.data_dir,
                existing,
                config.raft_address,
                config.raft_secret or "",
                config.tls_ca if os.path.isfile(config.tls_ca) else None,
            )
        )
    if not await asyncio.to_thread(raft.wait_ready, 60.0):
        log.warning("raft is not ready after 60 s; serving anyway")
    tls = TlsFiles(config.tls_ca, config.tls_ca_key, config.tls_cert, config.tls_key)
    has_tls = os.path.isfile(tls.cert)
    peers = PeerClient(config.raft_secret, tls if has_tls else None)
    blob_server = None
    if config.grpc_address:
        blob_server = BlobServer(
            config.grpc_address,
            store,
            config.replica_id,
            config.raft_secret,
            tls,
            lambda: state.view(gc.collections),
        )
        blob_server.start()
    blobs = BlobClient(config.raft_secret, tls) if has_tls else None
    registry = Registry(
        replica_id=config.replica_id,
        store=store,
        uploads=UploadSessions(
            config.path("storage"),
            config.replica_id,
            config.uploads_max_per_user,
            config.uploads_expire_after_s,
            store.session_writer,
            store.session_info if isinstance(store, S3BlobStore) else None,
        ),
        state=state,
        raft=raft,
        peers=peers,
        blobs=blobs,
        replication_factor=config.blobs_replication_factor,
    )
    auth = _auth_service(config, state)
    directory = Directory(state, registry.propose, config.raft_secret or "")
    directory_syncing = asyncio.create_task(directory.sync_forever(raft.is_leader))
    if auth is not None:
        auth.directory = directory
    grant_signer, grant_verifier = _grant_keys(config)
    health = CacheHealth(registry, config.tls_ca)
    checking = asyncio.create_task(health.run())
    metrics.watch_raft(raft.status)
    certificates = {"replica": tls.cert, "ca": tls.ca}
    metrics.watch_node(config.data_dir, certificates)
    cert_watching = asyncio.create_task(cert_watch.watch(certificates))
    registry.on_proposed = metrics.proposal_seconds.observe
    registration = asyncio.create_task(registry.register(config.http_url, config.grpc_address))
    bootstrap = asyncio.create_task(_create_admin(registry, config.auth_admin_password_hash))
    sync = BlobSync(registry.replication)
    metrics.watch_blob_sync(sync)
    syncing = asyncio.create_task(sync.run())
    scrubber = Scrubber(
        registry.replication,
        metrics,
        config.scrub_interval_s,
        config.scrub_rate_mib_s,
    )
    scrubbing = asyncio.create_task(scrubber.run())
    store_health = StoreHealth(store, metrics)
    await store_health.check_once()
    store_checking = asyncio.create_task(store_health.run())
    purging = (
        asyncio.create_task(
            s3purge.purge_forever(store, raft.is_leader, config.uploads_expire_after_s)
        )
        if isinstance(store, S3BlobStore)
        else None
    )
    expiring = asyncio.create_task(registry.uploads.expire_forever())
    monitor = DivergenceMonitor(registry, metrics, config.state_verify_interval_s)
    monitoring = asyncio.create_task(monitor.run())
    removal = RemovalWatch(registry, config.data_dir)
    watching = asyncio.create_task(removal.run())
    metrics.watch_gc_sweeper(sweeper)
    sweeping = asyncio.create_task(sweeper.run(registry.propose, registry.fresh))
    scanner = Scanner(registry, config.data_dir, metrics)
    registry.on_manifest = scanner.pushed
    scanning = asyncio.create_task(scanner.run())
    importer = Importer(registry)
    deliverer = (
        Deliverer(registry, config.raft_secret, _registry_host(config), importer)
        if config.raft_secret
        else None
    )
    proxies = Proxies(importer, deliverer.open_password) if deliverer is not None else None
    metrics.watch_imports(importer, proxies)
    delivering = asyncio.create_task(deliverer.run()) if deliverer is not None else None
    collector = Collector(registry, metrics, config.gc_grace_s)
    gc_schedule = Schedule(collector)
    scheduling = asyncio.create_task(gc_schedule.run())
    replica = ReplicaContext(
        registry=registry,
        auth=auth,
        metrics=metrics,
        grant_signer=grant_signer,
        grant_verifier=grant_verifier,
        cache_health=health,
        blob_sync=sync,
        scrubber=scrubber,
        store_health=store_health,
        divergence=monitor,
        removal=removal,
        collector=collector,
        gc_schedule=gc_schedule,
        sweeper=sweeper,
        scanner=scanner,
        trust=TrustService(registry, KeySeal(config.raft_secret)) if config.raft_secret else None,
        signed_tags=SignedTags(state),
        secret=config.raft_secret,
        internal_token=internal_token(config.raft_secret),
        ca_path=config.tls_ca,
        ca_key_path=config.tls_ca_key,
        public_url=config.http_public_url,
        redirect_clients=tuple(c.lower() for c in config.caches_redirect_clients),
        refusals=RefusalEvents(registry),
        webhooks=deliverer,
        proxies=proxies,
    )
    log.info("replica %s ready", config.replica_id)
    try:
        yield replica
    finally:
        # A planned stop of the leader hands leadership over first: no write waits
        # for an election timeout (the followers' clients' pushes are retried).
        if await raft.hand_over_leadership():
            log.info("leadership handed over before stopping")
        registration.cancel()
        if joining is not None:
            joining.cancel()
        bootstrap.cancel()
        directory_syncing.cancel()
        directory.close()
        if delivering is not None and deliverer is not None:
            delivering.cancel()
            deliverer.close()
        if proxies is not None:
            proxies.close()
        importer.close()
        syncing.cancel()
        scrubbing.cancel()
        store_checking.cancel()
        if purging is not None:
            purging.cancel()
        expiring.cancel()
        monitoring.cancel()
        watching.cancel()
        checking.cancel()
        state.on_collect = None
        sweeping.cancel()
        scanning.cancel()
        cert_watching.cancel()
        scheduling.cancel()
        await peers.close()
        if blobs is not None:
            await blobs.aclose()
        if blob_server is not None:
            await asyncio.to_thread(blob_server.stop)
        await asyncio.to_thread(raft.close)
        state.sync()
        state.close()
        if isinstance(store, S3BlobStore):
            store.close()


def _registry_host(config: ReplicaConfig) -> str:
    """host[:port] clients pull from, for the pull references events carry."""
    url = config.http_public_url or config.http_url
    return url.split("://", 1)[-1].rstrip("/")


def _grant_keys(
    config: ReplicaConfig,
) -> tuple[grants.GrantSigner | None, grants.GrantVerifier | None]:
    """Cache grants are signed with the cluster CA key, like tokens."""
    try:
        with open(config.tls_ca_key, "rb") as key, open(config.tls_ca, "rb") as cert:
            return grants.GrantSigner(key.read()), grants.GrantVerifier(cert.read())
    except OSError:
        return None, None


def _auth_service(config: ReplicaConfig, state: MetadataState) -> AuthService | None:
    """The token service, when this replica holds the cluster CA key that signs tokens."""
    try:
        with open(config.tls_ca_key, "rb") as key, open(config.tls_ca, "rb") as cert:
            keys = TokenKeys(key.read(), cert.read(), config.auth_service)
    except OSError:
        if config.auth_enabled:
            raise
        return None
    return AuthService(state, keys, config.auth_enabled, _realms(config))


def _realms(config: ReplicaConfig) -> RealmPolicy:
    names = {config.http_host}
    for path in (config.tls_public_cert, config.tls_cert):
        try:
            with open(path, "rb") as f:
                names |= pki.certificate_names(f.read())
        except (OSError, ValueError):
            continue
    return RealmPolicy(config.http_public_url, config.http_url, frozenset(names), config.http_port)


async def _create_admin(registry: Registry, password_hash: str) -> None:
    """The first start of a cluster creates its admin account, once a quorum commits it.

    Once per cluster, ever (a replicated marker): a deleted admin stays deleted, and
    the hash left in every replica's config is ignored from then on.
    """
    if not password_hash:
        return
    while not registry.state.view(accounts.bootstrapped):
        try:
            await registry.propose(
                pb.Command(
                    put_account=pb.PutAccount(
                        name="admin",
                        password_hash=password_hash,
                        global_role="admin",
                        set_role=True,
                        create_only=True,
                        bootstrap=True,
                        at_ms=int(time.time() * 1000),
                    )
                )
            )
        except AlreadyExists:
            return
        except Unavailable:
            await asyncio.sleep(0.3)  # no leader yet: the first election is close
