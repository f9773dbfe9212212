"""Raft wiring: RaftNode, over pysyncobj (machine.py and the transport modules are
the only others that import it).

The rest of the code sees `RaftNode.propose(command) -> Result` and `status()`.
Each log entry is one serialized `proto.commands.Command`, handed to
`MetadataState.apply` with its Raft index.

Snapshots are LMDB copies, not pickles of Python objects: pysyncobj's custom
serializer hook writes a small JSON header (the last two applied entries and the
cluster's members, which pysyncobj needs to resume) followed by a compacted copy
of the LMDB environment. Loading a snapshot replaces the LMDB environment only
when it is behind the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON, SyncObjConf
from pysyncobj.monotonic import monotonic as raft_clock
from pysyncobj.node import TCPNode

from consensus import snapshot
from consensus.machine import MAX_LOG_BYTES, Machine
from consensus.proposals import NoQuorum, failure, may_propose_again
from consensus.snapshot_transfer import Descriptor, Fetcher, SnapshotSerializer
from consensus.state import COMMAND_VERSION, MetadataState
from proto import commands_pb2 as pb

log = logging.getLogger("qreg.consensus")


class RaftNode:
    """One member of the metadata Raft group, with its journal under `raft_dir`."""

    def __init__(
        self,
        state: MetadataState,
        raft_dir: str,
        self_address: str,
        peers: list[str],
        password: str,
        compact_every: int = 20000,
        unsafe_skip_fsync: bool = False,
        fetch_snapshot: Fetcher | None = None,
        max_log_bytes: int = MAX_LOG_BYTES,
    ) -> None:
        if not password:
            # pysyncobj unpickles every frame; the secret authenticates them first.
            raise ValueError("a Raft node needs the cluster secret")
        # The journal and snapshots hold password hashes: owner only.
        os.makedirs(raft_dir, mode=0o700, exist_ok=True)
        os.chmod(raft_dir, 0o700)
        for name in os.listdir(raft_dir):
            if os.path.isfile(os.path.join(raft_dir, name)):
                os.chmod(os.path.join(raft_dir, name), 0o600)
        self._state = state
        self._snapshot_path = os.path.join(raft_dir, "snapshot")
        conf = SyncObjConf(
            journalFile=os.path.join(raft_dir, "journal"),
            fullDumpFile=self._snapshot_path,
            # Not called (SnapshotSerializer takes pysyncobj's Serializer's place), but a
            # custom serializer tells pysyncobj not to pickle its own attributes.
            serializer=self._begin_snapshot,
            deserializer=self._read_snapshot,
            # Batching makes every synchronous write wait for the next tick (~100 ms).
            appendEntriesUseBatch=False,
            dynamicMembershipChange=True,
            password=password,
            # A leader cut off from the majority steps down in seconds, not 30 s.
            leaderFallbackTimeout=5.0,
            # Heartbeats every 50 ms keep the leader's read lease (LEASE_S) fresh.
            appendEntriesPeriod=0.05,
            # pysyncobj's 5 s default kept a restarted or newly added member out for
            # seconds after it was up; with two members that is a write outage.
            connectionRetryTime=0.5,
            raftMinTimeout=RAFT_MIN_TIMEOUT_S,
            raftMaxTimeout=1.4,
            logCompactionMinEntries=compact_every,
            # Compact by the log's growth only: a timed snapshot of a large state after a
            # handful of writes would cost a full copy for nothing.
            logCompactionMinTime=7 * 24 * 3600,
        )
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiters_lock = threading.Lock()
        self._closed = False
        self._applied = state.applied_index()
        self._staging = state.path + ".restore"
        self._compact_every = compact_every
        self.snapshots = SnapshotSerializer(
            self._snapshot_path,
            self_address,
            self._begin_snapshot,
            self._read_snapshot,
            fetch_snapshot,
            self._stage_snapshot,
        )
        self._answer_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._machine = Machine(
            state,
            self_address,
            peers,
            conf,
            self._notify_applied,
            unsafe_skip_fsync,
            self.snapshots,
        )
        self._machine._on_peer_answer = self._notify_answer
        self._machine.max_log_bytes = max_log_bytes

    # ---- proposing ------------------------------------------------------------

    async def propose(self, command: pb.Command, timeout: float = 5.0) -> pb.Result:
        """Replicate `command` and return what applying it gave, once committed."""
        command.version = command.version or COMMAND_VERSION
        # Every command carries when it was proposed (the proposer's clock, in the log:
        # applying stays deterministic); events and the audit log read it.
        command.at_ms = command.at_ms or int(time.time() * 1000)
        data = command.SerializeToString()
        kind = command.WhichOneof("kind")
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = await self._call(
                    lambda done: self._machine.apply_entry(data, callback=done),
                    max(deadline - time.monotonic(), 0.01),
                )
                return pb.Result.FromString(raw)
            except NoQuorum as e:
                if not may_propose_again(kind, e.reason) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)

    async def hand_over_leadership(self, timeout: float = 3.0) -> bool:
        """On the leader, before a planned stop: hand leadership to a caught-up
        follower (machine.py), so writes pause for an election's round trip instead
        of an election timeout. True if another node leads now."""
        if not self.is_leader() or not self.has_peers or self._machine.halted is not None:
            return False  # a halted node no longer ticks: nothing would hand it over
        self._machine.hand_over(timeout)
        await asyncio.to_thread(self._machine.handover_done.wait, timeout + 1.0)
        return not self.is_leader()

    async def add_member(self, address: str, timeout: float = 10.0) -> None:
        """Make the replica at Raft `address` a voting member (one change at a time)."""
        await self._call(
            lambda done: self._machine.addNodeToCluster(address, callback=done), timeout
        )

    async def remove_member(self, address: str, timeout: float = 10.0) -> None:
        await self._call(
            lambda done: self._machine.removeNodeFromCluster(address, callback=done), timeout
        )

    def members(self) -> list[str]:
        """Raft addresses of every voting member, this one included."""
        return sorted([self.self_address] + [str(n.address) for n in self._machine.otherNodes])

    async def _call(self, submit: Any, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def done(result: Any, error: int) -> None:
            def settle() -> None:
                if future.done():
                    return
                if error == FAIL_REASON.SUCCESS:
                    future.set_result(result)
                else:
                    future.set_exception(failure(error))

            loop.call_soon_threadsafe(settle)

        submit(done)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise NoQuorum("timed out waiting for a majority") from None

    # ---- reading at the leader's commit index (ReadIndex) ------------------------

    @property
    def self_address(self) -> str:
        return str(self._machine.selfNode.address)

    def leader_address(self) -> str | None:
        leader = self._machine._getLeader()
        return str(leader.address) if leader is not None else None

    @property
    def has_peers(self) -> bool:
        return bool(self._machine.otherNodes)

    async def leader_known(self, within: float) -> bool:
        """Whether a leader is known now or becomes known within `within` seconds."""
        deadline = time.monotonic() + within
        while self.leader_address() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def is_leader(self) -> bool:
        return bool(self._machine._isLeader())

    def leader_silent_for(self) -> float:
        """Seconds since this node last heard from a leader (0 on the leader). A node
        cut out of the cluster may keep naming its old leader: this tells it apart."""
        return self._machine.leader_silent_for()

    def read_index(self) -> int | None:
        """On a leader whose lease holds, the index that a fresh read must wait for."""
        if not self._machine.lease_holds(LEASE_S):
            return None
        return int(self._machine.raftCommitIndex)

    async def lease_read_index(self, timeout: float = 0.5) -> int:
        """On the leader: its commit index as soon as its lease holds, woken by the
        peers' answers rather than polling; NoQuorum if it is not the leader or no
        majority answers within `timeout`."""
        deadline = time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        while True:
            index = self.read_index()
            if index is not None:
                return index
            left = deadline - time.monotonic()
            if not self.is_leader() or left <= 0:
                raise NoQuorum("not the leader, or no majority answered its heartbeats")
            future: asyncio.Future[None] = loop.create_future()
            with self._waiters_lock:
                self._answer_waiters.append((loop, future))
            try:
                await asyncio.wait_for(future, min(left, 0.06))  # a heartbeat round at most
            except TimeoutError:
                pass

    def _notify_answer(self) -> None:
        if not self._answer_waiters:
            return
        with self._waiters_lock:
            ready, self._answer_waiters = self._answer_waiters, []
        for loop, future in ready:
            loop.call_soon_threadsafe(_settle, future)

    async def wait_applied(self, index: int, timeout: float = 5.0) -> None:
        """Wait until this replica's state includes the entry at `index`."""
        if self._applied >= index:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._waiters_lock:
            if self._applied >= index:
                return
            self._waiters.append((index, loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise NoQuorum(f"this replica did not reach index {index} in time") from None

    def _notify_applied(self, index: int) -> None:
        # A restart replays entries the state already holds: never go backwards.
        self._applied = max(self._applied, index)
        if not self._waiters:
            return
        with self._waiters_lock:
            ready = [w for w in self._waiters if w[0] <= index]
            self._waiters = [w for w in self._waiters if w[0] > index]
        for _, loop, future in ready:
            loop.call_soon_threadsafe(_settle, future)

    # ---- status -------------------------------------------------------------------

    def wait_ready(self, timeout: float) -> bool:
        """Block until this node has applied the log it found at start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._machine.isReady() and self._machine._getLeader() is not None:
                return True
            time.sleep(0.02)
        return False

    def last_contact(self) -> dict[str, float]:
        """On a leader: seconds since each peer last answered, by Raft address."""
        if not self._machine._isLeader():
            return {}
        now = raft_clock()  # pysyncobj's clock (see lease_holds)
        last = self._machine._SyncObj__lastResponseTime
        members = set(self._machine.otherNodes)  # pysyncobj keeps removed nodes' times
        return {
            str(node.address): round(now - t, 3)
            for node, t in list(last.items())
            if node in members
        }

    def status(self) -> dict[str, Any]:
        m = self._machine
        raw = m.getStatus()
        leader = raw.get("leader")
        state = {0: "follower", 1: "candidate", 2: "leader"}.get(raw.get("state"), "unknown")
        return {
            "role": state,
            "leader": str(leader) if leader is not None else None,
            "term": raw.get("raft_term"),
            "commit_index": raw.get("commit_idx"),
            "applied_index": raw.get("last_applied"),
            "has_quorum": bool(raw.get("has_quorum")),
            "log_entries": raw.get("log_len"),
            "log_bytes": m.journal.bytes,
            "snapshot_index": current.index if (current := self.snapshots.current) else 0,
            "snapshot_write_seconds": self.snapshots.last_write_seconds,
            # For qreg upgrade-check: what this replica can apply, what the log holds.
            "command_version": COMMAND_VERSION,
            "highest_command_version": self._state.highest_command_version(),
            "halted": m.halted,
        }

    def close(self) -> None:
        """Stop this node (idempotent: a removed replica stops it before shutdown does)."""
        with self._waiters_lock:
            if self._closed:
                return
            self._closed = True
        self._machine.destroy_synchronous()

    @property
    def snapshot_path(self) -> str:
        return self._snapshot_path

    def compact(self) -> None:
        """Ask for a snapshot and log compaction at the next tick."""
        self._machine.forceLogCompaction()

    async def fresh_snapshot(self, timeout: float = 60.0) -> str | None:
        """The path of a snapshot at this replica's applied index as of the call (or
        later), or None if none was written in time: never an older one.

        Its entries carry the log's real terms, so a replica that starts from it
        matches the leader's log and only needs the entries that follow.
        """
        target = int(self._machine.raftLastApplied)
        deadline = time.monotonic() + timeout
        # pysyncobj keeps the request until it can serve it (after one in progress).
        self.compact()
        while time.monotonic() < deadline:
            current = self.snapshots.current
            if current is not None and current.index >= target:
                return self._snapshot_path
            await asyncio.sleep(0.05)
        return None

    # ---- snapshots ------------------------------------------------------------------

    def _begin_snapshot(self, path: str, data: tuple[Any, Any, Any]) -> Callable[[], None]:
        """In the Raft thread: pin the state as it is now (an LMDB read transaction, at
        once); the returned function writes it out in a worker thread."""
        last, before_last, cluster = data
        pinned = self._state.pin()
        # A snapshot copies the whole state: space them by a quarter of its size, so
        # what they cost per write stays the same however large the state grows.
        conf = self._machine._getConf()
        conf.logCompactionMinEntries = max(self._compact_every, self._state.key_count() // 4)

        def finish() -> None:
            try:
                snapshot.write(path, pinned, last, before_last, [n.address for n in cluster])
            finally:
                pinned.release()

        return finish

    def _stage_snapshot(self, path: str, wanted: Descriptor) -> None:
        """In a worker thread: unpack a downloaded snapshot's LMDB next to the state and
        check it against the digest it carries, so installing it is a rename."""
        shutil.rmtree(self._staging, ignore_errors=True)
        with open(path, "rb") as f:
            header = snapshot.read_header(f)
            if int(header["last"][1]) != wanted.index:
                raise ValueError(f"the file is at index {header['last'][1]}, not {wanted.index}")
            snapshot.extract_lmdb(f, self._staging)
        staged = MetadataState(self._staging)
        try:
            applied, kept, recounted = staged.verify_at_rest()
        finally:
            staged.close()
        if kept != recounted or applied > wanted.index:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise ValueError(f"its metadata does not match its own digest (index {applied})")
        with open(os.path.join(self._staging, _STAGED_FOR), "w") as f:
            f.write(wanted.sha256)

    def _read_snapshot(self, path: str) -> tuple[Any, Any, Any]:
        """Load a snapshot: the metadata becomes its LMDB when the state is behind it."""
        with open(path, "rb") as f:
            header = snapshot.read_header(f)
            if self._state.applied_index() < header["last"][1]:
                if not self._staged_for(path):  # a restore or a local file: unpack it now
                    shutil.rmtree(self._staging, ignore_errors=True)
                    snapshot.extract_lmdb(f, self._staging)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self._staging, _STAGED_FOR))
                self._state.replace_with(self._staging)
                log.info("metadata restored from the snapshot at index %d", header["last"][1])
        cluster = {TCPNode(address) for address in header["cluster"]}
        return header["last"], header["before_last"], cluster

    def _staged_for(self, path: str) -> bool:
        current = self.snapshots.current
        try:
            with open(os.path.join(self._staging, _STAGED_FOR)) as f:
                return current is not None and f.read() == current.sha256
        except OSError:
            return False


_STAGED_FOR = "staged-for-snapshot"


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# A follower votes for no one, and starts no election, this long after accepting an
# append (read_lease.py); a lease shorter by a margin for clock rates holds only while
# no other leader can exist.
RAFT_MIN_TIMEOUT_S = 0.4
LEASE_S = 0.3
