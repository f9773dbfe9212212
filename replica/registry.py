"""The registry's service layer: what handlers call, between them and storage.

Writes verify and store bytes first, then propose the metadata change through
Raft; reads come from the local state machine and blob store.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from consensus import Manifest, MetadataState, NoQuorum, RaftNode
from proto import commands_pb2 as pb
from replica import manifests
from replica.blob_mirror import PeerMirror
from replica.blob_service import BlobClient, result_of
from replica.blobstore import BlobStore
from replica.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    Unavailable,
    from_code,
)
from replica.freshness import ReadBarrier
from replica.names import digest_of, is_tag
from replica.peers import PeerClient, PeerError
from replica.placement import fills_gap, target_copies
from replica.uploads import UploadSessions

log = logging.getLogger("qreg.registry")

# How long a read waits to confirm this replica is current before it gives up.
FRESH_WAIT_S = 2.0
_BARRIER_RETRY_S = 0.05
REGISTRATION_WAIT_S = 5.0  # a new member between its vote and its blob service
# Set in a request's context when a read could not be confirmed current; the
# dispatcher marks such answers with the Qreg-Read: unconfirmed header.
UNCONFIRMED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "qreg_unconfirmed", default=False
)


def unconfirmed_miss() -> Unavailable:
    return Unavailable(
        "this replica cannot confirm that it is current (no quorum reached); "
        "retry, or ask another replica",
        headers={"Retry-After": "1"},
    )


@dataclass
class Registry:
    replica_id: str
    store: BlobStore
    uploads: UploadSessions
    state: MetadataState
    raft: RaftNode
    peers: PeerClient
    blobs: BlobClient | None = None
    replication_factor: int = 0  # see placement.py
    _barrier: ReadBarrier = field(init=False)
    _background: set[asyncio.Future[None]] = field(init=False, default_factory=set)
    _leaderless_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._barrier = ReadBarrier(self._fetch_read_index, self.raft.wait_applied)

    # ---- freshness ------------------------------------------------------------------

    async def fresh(self) -> bool:
        """Bring local state up to the leader's commit index before a read; True once
        confirmed current, False when it could not be (no quorum, within FRESH_WAIT_S).

        A read that finds nothing may answer "unknown" only when confirmed: an
        unconfirmed miss is 503 (`unconfirmed_miss`), never a 404 that clients treat as
        final. Content found without confirmation is served, marked (`UNCONFIRMED`):
        the degraded mode that keeps pulls working without a quorum. While no leader
        is known, reads after the first unconfirmed one stop waiting; as soon as a
        leader is known again, every read waits for its barrier.
        """
        if not self.raft.has_peers:
            return True
        leaderless = self.raft.leader_address() is None
        if (
            leaderless
            and self._leaderless_since is not None
            and time.monotonic() - self._leaderless_since > FRESH_WAIT_S
        ):
            UNCONFIRMED.set(True)
            return False
        deadline = time.monotonic() + FRESH_WAIT_S
        while True:
            try:
                await asyncio.wait_for(self._barrier(), max(deadline - time.monotonic(), 0.01))
                self._leaderless_since = None
                return True
            except (TimeoutError, NoQuorum, PeerError) as e:
                if self.raft.leader_address() is None and self._leaderless_since is None:
                    self._leaderless_since = time.monotonic()
                if time.monotonic() >= deadline:
                    log.warning("read not confirmed current: %s", e)
                    UNCONFIRMED.set(True)
                    return False
                await asyncio.sleep(_BARRIER_RETRY_S)

    async def leader_read_index(self) -> int:
        """On the leader: its commit index once its lease holds (a heartbeat round at most)."""
        return await self.raft.lease_read_index(0.5)

    async def _fetch_read_index(self) -> int:
        if self.raft.is_leader():
            return await self.leader_read_index()
        leader = self.raft.leader_address()
        url = self.url_of(leader) if leader else None
        if url is None:
            raise NoQuorum("no known leader")
        return await self.peers.read_index(url)

    def url_of(self, raft_address: str) -> str | None:
        for replica in self.state.replicas():
            if replica.raft_address == raft_address:
                return replica.http_url
        return None

    def replica_id_of(self, raft_address: str) -> str | None:
        for replica in self.state.replicas():
            if replica.raft_address == raft_address:
                return replica.replica_id
        return None

    # ---- reads --------------------------------------------------------------------

    async def blob_size(self, repository: str, digest: str) -> int:
        """Size of a blob the repository links (its bytes may be on a peer only)."""
        size = self.state.blob_link(repository, digest)
        if size is None:
            confirmed = await self.fresh()
            size = self.state.blob_link(repository, digest)
            if size is None and not confirmed:
                raise unconfirmed_miss()
        if size is None:
            raise BlobUnknown(detail={"digest": digest})
        return size

    def blob_sources(self, digest: str) -> list[str]:
        """gRPC addresses of the other replicas that hold a blob, in random order:
        load spreads, and a holder with a bad copy is not always tried first."""
        addresses = {r.replica_id: r.grpc_address for r in self.state.replicas() if r.grpc_address}
        sources = [
            addresses[h]
            for h in self.state.blob_holders(digest)
            if h != self.replica_id and h in addresses
        ]
        random.shuffle(sources)
        return sources

    async def manifest(self, repository: str, reference: str) -> Manifest:
        # A tag moves: confirm first. A digest is immutable: what is held is right.
        confirmed = await self.fresh() if is_tag(reference) else True
        found = self._manifest(repository, reference)
        if found is None and not is_tag(reference):
            confirmed = await self.fresh()
            found = self._manifest(repository, reference)
        if found is None and not confirmed:
            raise unconfirmed_miss()
        if found is None:
            if not self.state.repository_exists(repository):
                raise NameUnknown(detail={"name": repository})
            raise ManifestUnknown(detail={"reference": reference})
        return found

    def _manifest(self, repository: str, reference: str) -> Manifest | None:
        digest = self.state.resolve(repository, reference)
        return self.state.manifest(repository, digest) if digest else None

    async def tags(self, repository: str, limit: int | None, last: str) -> list[str]:
        confirmed = await self.fresh()
        if not self.state.repository_exists(repository):
            if not confirmed:
                raise unconfirmed_miss()
            raise NameUnknown(detail={"name": repository})
        return self.state.tags(repository, last, limit)

    async def catalog(
        self, limit: int | None, last: str, visible: Callable[[Any, str], bool] | None = None
    ) -> list[str]:
        await self.fresh()
        return self.state.repositories(last, limit, visible)

    async def referrers(self, repository: str, digest: str) -> list[pb.Descriptor]:
        await self.fresh()
        return self.state.referrers(repository, digest)

    # ---- writes -----------------------------------------------------------------------

    async def link_blob(
        self, repository: str, digest: str, size: int, holders: list[str] | None = None
    ) -> None:
        await self._propose(
            pb.Command(
                link_blob=pb.LinkBlob(
                    repository=repository,
                    digest=digest,
                    size=size,
                    replica_id=self.replica_id,
                    holders=holders or [],
                )
            )
        )

    def _blob_peers(self) -> list[pb.RegisterReplica]:
        members = set(self.raft.members())
        return [
            r
            for r in self.state.replicas()
            if r.replica_id != self.replica_id and r.raft_address in members and r.grpc_address
        ]

    def mirror(self) -> PeerMirror | None:
        """A mirror streaming an incoming blob to as many peers as the replication
        target asks (every peer by default), or None when alone."""
        peers = self._blob_peers()
        if self.blobs is None or not peers:
            return None
        copies = target_copies(self.replication_factor, len(self.raft.members())) - 1
        peers = random.sample(peers, min(copies, len(peers)))
        return PeerMirror(self.blobs, {p.replica_id: p.grpc_address for p in peers})

    async def store_durably(
        self, repository: str, digest: str, size: int, mirror: PeerMirror | None = None
    ) -> None:
        """Link a blob this replica just committed, once a majority holds it durably.

        Peers that mirrored the upload only have to commit; others get the file
        over gRPC now. The link waits for as many as make a majority with this
        replica; the other copies finish in the background.
        """
        holders = await self.replicas_holding(digest, size, mirror)
        await self.link_blob(repository, digest, size, holders)

    async def replicas_holding(
        self, digest: str, size: int, mirror: PeerMirror | None = None
    ) -> list[str]:
        """Copy a committed blob to peers until a majority (with this replica) holds it;
        the peers that hold it then. Copies beyond that finish in the background, up
        to the replication target."""
        streams = mirror.finish(digest, size) if mirror is not None else {}
        members = set(self.raft.members())
        peers = self._blob_peers()
        needed = len(members) // 2  # a majority, counting this replica
        if needed == 0:
            return []
        if self.raft.leader_address() is None:
            raise Unavailable(
                "the cluster has no quorum: no leader is elected", headers={"Retry-After": "1"}
            )
        # A member that just joined registers its blob service moments after its vote
        # counts: wait for it rather than fail the push.
        registering = time.monotonic() + REGISTRATION_WAIT_S
        while self.blobs is not None and len(peers) < needed and time.monotonic() < registering:
            await asyncio.sleep(0.1)
            peers = self._blob_peers()
        if self.blobs is None or len(peers) < needed:
            raise Unavailable(
                f"a blob needs {needed} other replicas and {len(peers)} are known",
                headers={"Retry-After": "1"},
            )
        # Mirrored peers first: they only have to commit. The others stand by, to
        # replace a copy that fails.
        random.shuffle(peers)
        peers.sort(key=lambda p: p.replica_id not in streams)
        waiting = peers[:]
        copies = target_copies(self.replication_factor, len(members)) - 1
        # A paused peer accepts the connection and never answers: bound the wait by
        # what a slow but healthy peer needs (fsynced disk writes at 50 MiB/s or better).
        deadline = time.monotonic() + 5.0 + size / (50 << 20)
        pushes: set[asyncio.Future[str]] = set()

        def copy_to_next() -> None:
            peer = waiting.pop(0)
            pushes.add(
                asyncio.ensure_future(
                    self._copy_to(peer, digest, size, deadline, streams.pop(peer.replica_id, None))
                )
            )

        for _ in range(copies):
            copy_to_next()
        for unused in streams.values():  # mirrored beyond the target: let them go
            unused.cancel()
        holders: list[str] = []
        while pushes and len(holders) < needed:
            done, _ = await asyncio.wait(pushes, return_when=asyncio.FIRST_COMPLETED)
            for push in done:
                pushes.discard(push)
                try:
                    holders.append(push.result())
                except Exception as e:  # a peer down or full: another may take its place
                    log.warning("copying %s to a peer failed: %s", digest, e)
                    if waiting:
                        copy_to_next()
        if len(holders) < needed:
            raise Unavailable(
                f"no majority of replicas stored {digest}: the cluster has no quorum for blobs",
                headers={"Retry-After": "1"},
            )
        if pushes:
            task = asyncio.ensure_future(self._record_late_copies(list(pushes), digest, size))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return holders

    def member_ids(self) -> list[str]:
        """Replica ids of the current Raft members."""
        members = set(self.raft.members())
        return [r.replica_id for r in self.state.replicas() if r.raft_address in members]

    def keeps(self, digest: str) -> bool:
        """Whether this replica should keep a copy of a blob it serves."""
        if self.replication_factor <= 0:
            return True
        members = self.member_ids()
        return fills_gap(
            digest,
            self.replica_id,
            self.state.blob_holders(digest),
            members,
            target_copies(self.replication_factor, len(members)),
        )

    async def _copy_to(
        self,
        peer: pb.RegisterReplica,
        digest: str,
        size: int,
        deadline: float,
        mirrored: grpc.Future | None,
    ) -> str:
        """The peer's replica id once it holds the blob: from its mirror, else by a push.
        Both share one deadline (time.monotonic())."""
        assert self.blobs is not None
        if mirrored is not None:
            try:
                result = await result_of(mirrored, deadline - time.monotonic())
                return str(result.replica_id)
            except Exception as e:
                mirrored.cancel()
                log.warning(
                    "mirroring %s to %s failed, sending the file: %s", digest, peer.replica_id, e
                )
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{peer.replica_id} did not store {digest} in time")
        path = self.store.path(digest)
        return await self.blobs.push_async(peer.grpc_address, digest, size, path, left)

    async def _record_late_copies(
        self, pushes: list[asyncio.Future[str]], digest: str, size: int
    ) -> None:
        results = await asyncio.gather(*pushes, return_exceptions=True)
        late = [r for r in results if isinstance(r, str)]
        if late:
            with contextlib.suppress(RegistryError):
                await self._propose(
                    pb.Command(
                        link_blob=pb.LinkBlob(
                            digest=digest, size=size, replica_id=self.replica_id, holders=late
                        )
                    )
                )

    async def register(self, http_url: str, grpc_address: str) -> None:
        """Record how peers reach this replica, once a quorum can commit it."""
        command = pb.RegisterReplica(
            replica_id=self.replica_id,
            raft_address=self.raft.self_address,
            http_url=http_url,
            grpc_address=grpc_address,
        )
        while not any(r == command for r in self.state.replicas()):
            try:
                await self._propose(pb.Command(register_replica=command))
            except Unavailable:
                await asyncio.sleep(1.0)

    async def mount(self, repository: str, digest: str, source: str) -> bool:
        """Link a blob of `source` into `repository`; False if there is nothing to mount."""
        await self.fresh()
        size = self.state.blob_link(source, digest)
        if size is None:
            return False
        await self.link_blob(repository, digest, size)
        return True

    async def put_manifest(
        self, repository: str, reference: str, content_type: str, body: bytes
    ) -> pb.PutManifest:
        if is_tag(reference):
            digest = digest_of(body)
        else:
            digest = digest_of(body, reference.split(":", 1)[0])
            if digest != reference:
                raise DigestInvalid(detail={"expected": reference, "actual": digest})
        command = manifests.parse(repository, digest, content_type, body)
        if is_tag(reference):
            command.tag = reference
        command.pushed_at_ms = int(time.time() * 1000)
        await self._propose(pb.Command(put_manifest=command))
        return command

    async def delete_manifest(self, repository: str, reference: str) -> None:
        if is_tag(reference):
            command = pb.Command(delete_tag=pb.DeleteTag(repository=repository, tag=reference))
        else:
            command = pb.Command(
                delete_manifest=pb.DeleteManifest(repository=repository, digest=reference)
            )
        await self.fresh()
        if not self.state.repository_exists(repository):
            raise NameUnknown(detail={"name": repository})
        await self._propose(command)

    async def delete_blob(self, repository: str, digest: str) -> None:
        await self.fresh()
        if not self.state.repository_exists(repository):
            raise NameUnknown(detail={"name": repository})
        await self._propose(
            pb.Command(unlink_blob=pb.UnlinkBlob(repository=repository, digest=digest))
        )

    async def propose(self, command: pb.Command) -> None:
        """Replicate a command; raise its OCI error if applying it failed."""
        await self._propose(command)

    async def _propose(self, command: pb.Command) -> None:
        if self.raft.has_peers and self.raft.leader_address() is None:
            # Fail fast: without a leader the command would only wait in a queue.
            raise Unavailable(
                "the cluster has no quorum: no leader is elected", headers={"Retry-After": "1"}
            )
        try:
            result = await self.raft.propose(command)
        except NoQuorum as e:
            raise Unavailable(
                f"the cluster has no quorum: {e}", headers={"Retry-After": "1"}
            ) from None
        if result.error_code:
            raise from_code(result.error_code, result.message)
