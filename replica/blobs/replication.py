"""Blob replication: a blob is acknowledged once a majority of replicas hold it durably.

BlobReplicator owns who gets a copy (every member, or the replication target of
placement.py), the mirrors that stream an upload to peers while it arrives, the
pushes that copy a committed file, and recording the copies in the metadata. It
knows the cluster through the state and Raft node it is given and records through
`propose`; it never sees the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

import grpc

from consensus import MetadataState, RaftNode, blob_records, gc
from proto import commands_pb2 as pb
from replica.blobs.mirror import PeerMirror
from replica.blobs.placement import fills_gap, target_copies
from replica.blobs.store import BlobStore, LocalBlobStore
from replica.blobs.transfer import BlobClient, result_of
from replica.errors import RegistryError, Unavailable

log = logging.getLogger("qreg.replication")

REGISTRATION_WAIT_S = 5.0
# The holder recorded for a blob in a shared object store: no replica's own copy, so
# a cluster moved back to local disks knows that no replica has it yet.
SHARED_HOLDER = "@object-store"  # a new member between its vote and its blob service


class BlobReplicator:
    def __init__(
        self,
        replica_id: str,
        store: BlobStore,
        client: BlobClient | None,
        state: MetadataState,
        raft: RaftNode,
        propose: Callable[[pb.Command], Awaitable[None]],
        replication_factor: int = 0,
    ) -> None:
        self.replica_id = replica_id
        self.store = store
        self.client = client
        self.replication_factor = replication_factor  # see placement.py
        self._state = state
        self._raft = raft
        self._propose = propose
        self._background: set[asyncio.Future[None]] = set()

    # ---- who holds what -------------------------------------------------------------

    @property
    def holder_id(self) -> str:
        """Who a copy this replica commits is recorded as held by."""
        return SHARED_HOLDER if self.store.shared else self.replica_id

    def member_ids(self) -> list[str]:
        """Replica ids of the current Raft members."""
        members = set(self._raft.members())
        return [r.replica_id for r in self._state.replicas() if r.raft_address in members]

    def sources(self, digest: str) -> list[str]:
        """gRPC addresses of the other replicas that hold a blob, in random order:
        load spreads, and a holder with a bad copy is not always tried first."""
        addresses = {r.replica_id: r.grpc_address for r in self._state.replicas() if r.grpc_address}
        found = [
            addresses[h]
            for h in self._state.blob_holders(digest)
            if h != self.replica_id and h in addresses
        ]
        random.shuffle(found)
        return found

    def keeps(self, digest: str) -> bool:
        """Whether this replica should keep a copy of a blob it serves."""
        if self.replication_factor <= 0:
            return True
        members = self.member_ids()
        return fills_gap(
            digest,
            self.replica_id,
            self._state.blob_holders(digest),
            members,
            target_copies(self.replication_factor, len(members)),
        )

    def missing_here(self) -> list[tuple[str, int, list[str]]]:
        """(digest, size, holders) of the blobs this replica should hold and does not
        (all of them, or its share under a replication factor; none with a shared
        store). Scans every blob record: call it off the event loop."""
        if self.store.shared:
            return []
        missing = self._state.view(blob_records.missing_from, self.replica_id)
        if self.replication_factor <= 0:
            return missing
        members = self.member_ids()
        target = target_copies(self.replication_factor, len(members))
        return [
            m
            for m in missing
            if not m[2] or fills_gap(m[0], self.replica_id, m[2], members, target)
        ]

    def leads(self) -> bool:
        """Whether this replica is the Raft leader (it scrubs a shared store)."""
        return self._raft.is_leader()

    def collections_seen(self) -> int:
        """How many garbage collections this replica has applied: read before committing
        a copy, and named with it when it is recorded (consensus/gc.py)."""
        return int(self._state.view(gc.collections))

    async def record_copy(self, digest: str, size: int, seen: int) -> None:
        """Record that this replica now holds a blob, committed after `seen` collections
        (RegistryError if it cannot now, BlobUnknown if the blob was collected)."""
        await self._propose(
            pb.Command(
                link_blob=pb.LinkBlob(
                    digest=digest,
                    size=size,
                    replica_id=self.holder_id,
                    seen={self.holder_id: seen},
                )
            )
        )

    def _peers(self) -> list[pb.RegisterReplica]:
        members = set(self._raft.members())
        return [
            r
            for r in self._state.replicas()
            if r.replica_id != self.replica_id and r.raft_address in members and r.grpc_address
        ]

    # ---- copying --------------------------------------------------------------------

    def mirror(self) -> PeerMirror | None:
        """A mirror streaming an incoming blob to as many peers as the replication
        target asks (every peer by default), or None when alone."""
        peers = self._peers()
        if self.client is None or not peers or self.store.shared:
            return None
        copies = target_copies(self.replication_factor, len(self._raft.members())) - 1
        peers = random.sample(peers, min(copies, len(peers)))
        return PeerMirror(self.client, {p.replica_id: p.grpc_address for p in peers})

    async def replicate(
        self, digest: str, size: int, mirror: PeerMirror | None = None
    ) -> dict[str, int]:
        """Copy a committed blob to peers until a majority (with this replica) holds it;
        the peers that hold it then, with the collections each had applied before it
        committed. Copies beyond that finish in the background, up to the replication
        target, and are recorded when they do."""
        if self.store.shared:  # the object store keeps its own copies
            return {}
        streams = mirror.finish(digest, size) if mirror is not None else {}
        members = set(self._raft.members())
        peers = self._peers()
        needed = len(members) // 2  # a majority, counting this replica
        if needed == 0:
            return {}
        if not await self._raft.leader_known(within=1.0):
            raise Unavailable(
                "the cluster has no quorum: no leader is elected", headers={"Retry-After": "1"}
            )
        # A member that just joined registers its blob service moments after its vote
        # counts: wait for it rather than fail the push.
        registering = time.monotonic() + REGISTRATION_WAIT_S
        while self.client is not None and len(peers) < needed and time.monotonic() < registering:
            await asyncio.sleep(0.1)
            peers = self._peers()
        if self.client is None or len(peers) < needed:
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
        pushes: set[asyncio.Future[tuple[str, int]]] = set()

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
        holders: dict[str, int] = {}
        while pushes and len(holders) < needed:
            done, _ = await asyncio.wait(pushes, return_when=asyncio.FIRST_COMPLETED)
            for push in done:
                pushes.discard(push)
                try:
                    holder, seen = push.result()
                    holders[holder] = seen
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

    async def _copy_to(
        self,
        peer: pb.RegisterReplica,
        digest: str,
        size: int,
        deadline: float,
        mirrored: grpc.Future | None,
    ) -> tuple[str, int]:
        """(the peer's replica id, the collections it had seen) once it holds the blob:
        from its mirror, else by a push. Both share one deadline (time.monotonic())."""
        assert self.client is not None
        if mirrored is not None:
            try:
                result = await result_of(mirrored, deadline - time.monotonic())
                return str(result.replica_id), int(result.seen)
            except Exception as e:
                mirrored.cancel()
                log.warning(
                    "mirroring %s to %s failed, sending the file: %s", digest, peer.replica_id, e
                )
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{peer.replica_id} did not store {digest} in time")
        assert isinstance(self.store, LocalBlobStore)  # a shared store is never copied
        path = self.store.path(digest)
        pushed = await self.client.push_async(peer.grpc_address, digest, size, path, left)
        return str(pushed.replica_id), int(pushed.seen)

    async def _record_late_copies(
        self, pushes: list[asyncio.Future[tuple[str, int]]], digest: str, size: int
    ) -> None:
        results = await asyncio.gather(*pushes, return_exceptions=True)
        late = dict(r for r in results if isinstance(r, tuple))
        if late:
            with contextlib.suppress(RegistryError):
                await self._propose(
                    pb.Command(
                        link_blob=pb.LinkBlob(
                            digest=digest, size=size, holders=sorted(late), seen=late
                        )
                    )
                )
