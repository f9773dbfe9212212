"""The registry's service layer: what handlers call, between them and storage.

Writes verify and store bytes first, then propose the metadata change through
Raft; reads come from the local state machine and blob store.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus import Manifest, MetadataState, NoQuorum, RaftNode
from proto import commands_pb2 as pb
from replica import manifests
from replica.blobs.replication import BlobReplicator
from replica.blobs.store import BlobStore
from replica.blobs.transfer import BlobClient
from replica.blobs.uploads import UploadSessions
from replica.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestUnknown,
    NameUnknown,
    Unavailable,
    from_code,
)
from replica.freshness import ReadBarrier
from replica.names import digest_of, is_tag
from replica.peers import PeerClient, PeerError
from replica.quotas import QuotaCheck

log = logging.getLogger("qreg.registry")

# How long a read waits to confirm this replica is current before it gives up.
FRESH_WAIT_S = 2.0
_BARRIER_RETRY_S = 0.05
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


# What this version does that older replicas do not: garbage collection runs only
# once every member has said it knows "gc" (its copies name the collections seen).
FEATURES = ("gc",)


@dataclass
class Registry:
    replica_id: str
    store: BlobStore
    uploads: UploadSessions
    state: MetadataState
    raft: RaftNode
    peers: PeerClient
    blobs: BlobClient | None = None
    replication_factor: int = 0  # see blobs/placement.py
    replication: BlobReplicator = field(init=False)
    _barrier: ReadBarrier = field(init=False)
    _leaderless_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.quotas = QuotaCheck(self.state)
        self.on_manifest: Callable[[str, str], None] | None = None
        self.on_proposed: Callable[[float], None] | None = None  # seconds, for metrics
        self._barrier = ReadBarrier(self._fetch_read_index, self.raft.wait_applied)
        self.replication = BlobReplicator(
            self.replica_id,
            self.store,
            self.blobs,
            self.state,
            self.raft,
            self.propose,
            self.replication_factor,
        )

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
        self, repository: str, digest: str, size: int, copies: dict[str, int] | None = None
    ) -> None:
        """Link a blob into a repository: one just stored, with the replicas now holding
        it (each with the collections it had applied before committing its copy), or,
        without copies, one the cluster holds already (a mount)."""
        copies = copies or {}
        await self._propose(
            pb.Command(
                link_blob=pb.LinkBlob(
                    repository=repository,
                    digest=digest,
                    size=size,
                    replica_id=self.replica_id if self.replica_id in copies else "",
                    holders=sorted(set(copies) - {self.replica_id}),
                    seen=copies,
                    at_ms=int(time.time() * 1000),
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
            features=list(FEATURES),
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
        self, repository: str, reference: str, content_type: str, body: bytes, pusher: str = ""
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
        command.pushed_by = pusher
        await self.quotas.check(command)
        await self._propose(pb.Command(put_manifest=command))
        if self.on_manifest is not None:  # the scanner's queue: never waits
            self.on_manifest(repository, digest)
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

    async def propose_result(self, command: pb.Command) -> pb.Result:
        """`propose`, returning what applying the command answered."""
        return await self._propose(command)

    async def _propose(self, command: pb.Command) -> pb.Result:
        if self.raft.has_peers and not await self.raft.leader_known(within=1.0):
            # Fail fast: without a leader the command would only wait in a queue. An
            # election (a handover, a leader lost) takes well under the second waited.
            raise Unavailable(
                "the cluster has no quorum: no leader is elected", headers={"Retry-After": "1"}
            )
        started = time.monotonic()
        try:
            result = await self.raft.propose(command)
        except NoQuorum as e:
            raise Unavailable(
                f"the cluster has no quorum: {e}", headers={"Retry-After": "1"}
            ) from None
        if self.on_proposed is not None:
            self.on_proposed(time.monotonic() - started)
        if result.error_code:
            raise from_code(result.error_code, result.message)
        return result
