"""pysyncobj's SyncObj, adapted: our durable journal and snapshot serializer, group
commit at each tick, the read lease, and each committed entry handed to the state.

RaftNode (raft.py) is the interface the rest of the code sees; this is the machine
under it, running in pysyncobj's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj import syncobj as syncobj_module

from consensus.durability import DurableJournal, SyncingTransport
from consensus.snapshot_transfer import SnapshotSerializer
from consensus.state import MetadataState, UnknownCommand

_CONSTRUCTING = threading.Lock()
log = logging.getLogger("qreg.consensus")
# A TimeoutNow that found no caught-up follower, or was lost, is sent again this often.
_TRANSFER_RETRY_S = 0.2
# The log is compacted once its commands hold this much, however few they are: a large
# state spaces snapshots by a quarter of its keys (raft.py), and with large manifests
# that many entries would hold gigabytes in memory and pass the journal's 4 GiB limit.
MAX_LOG_BYTES = 256 << 20


class Machine(SyncObj):  # type: ignore[misc]
    def __init__(
        self,
        state: MetadataState,
        self_address: str,
        peers: list[str],
        conf: SyncObjConf,
        on_applied: Any,
        skip_fsync: bool,
        serializer: SnapshotSerializer,
    ) -> None:
        self._state = state
        self._on_applied = on_applied
        self._on_peer_answer: Any = lambda: None
        self._notified = 0
        # A leadership handover (hand_over): new commands wait in pysyncobj's queue
        # until another node leads, so the chosen follower's log stays complete.
        self._intake_paused = False
        self._handover_until = 0.0
        self._transfer_sent_at = 0.0
        self.handover_done = threading.Event()
        # Why this node stopped taking part, if a committed command was beyond it.
        self.halted: str | None = None
        self.journal = DurableJournal(conf.journalFile, skip_fsync)
        self._snapshots = serializer
        self.max_log_bytes = MAX_LOG_BYTES
        # pysyncobj builds its journal inside __init__ and starts its thread there:
        # hand it ours for that call only.
        # Likewise its Serializer: ours writes snapshots off the Raft thread and sends
        # peers a descriptor instead of the bytes (snapshot_transfer.py).
        # The swap is module-wide: one node is built at a time (tests build several).
        with _CONSTRUCTING:
            original = syncobj_module.createJournal, syncobj_module.Serializer
            syncobj_module.createJournal = lambda path: self.journal
            syncobj_module.Serializer = lambda *args: serializer
            try:
                super().__init__(self_address, peers, conf, transportClass=SyncingTransport)
            finally:
                syncobj_module.createJournal, syncobj_module.Serializer = original

    def sync_journal(self) -> None:
        self.journal.sync()

    def on_peer_answer(self) -> None:
        self._on_peer_answer()

    def lease_holds(self, window: float) -> bool:
        """True if a majority answered appends this leader sent within `window` seconds.

        Such a follower votes for no one, itself included, for raftMinTimeout after
        the append, so within a shorter window no other leader can have been
        elected: the leader's commit index is then safe to serve reads at.
        """
        if not self._isLeader():
            return False
        # A new leader knows the commit index only once its own no-op is committed.
        if self.raftCommitIndex < (self._SyncObj__noopIDx or 0):
            return False
        # Not pysyncobj's answer times: stamped on receipt, they void the lease (read_lease.py).
        lease = self._SyncObj__transport.lease
        return bool(lease.holds(self.raftCurrentTerm, self.otherNodes, window))

    def leader_silent_for(self) -> float:
        """Seconds since this node last accepted an append from a leader (0 on one)."""
        if self._isLeader():
            return 0.0
        return float(self._SyncObj__transport.lease.leader_silent_for())

    def hand_over(self, seconds: float) -> None:
        """Start handing leadership to a caught-up follower (any thread): stop taking
        commands, send it Raft's TimeoutNow once it has every entry, and take commands
        again (forwarding them to the new leader) once another node leads, or after
        `seconds`. handover_done is set when it ends either way."""
        self.handover_done.clear()
        self._handover_until = time.monotonic() + seconds
        self._transfer_sent_at = 0.0
        self._intake_paused = True

    def _checkCommandsToApply(self) -> None:
        if not self._intake_paused:
            super()._checkCommandsToApply()

    def _step_handover(self) -> None:
        if not self._intake_paused:
            return
        now = time.monotonic()
        leader = self._getLeader()
        if not self._isLeader() and leader is not None:
            log.info("handed leadership over to %s", leader.address)
        elif now > self._handover_until:
            log.warning("no follower took over leadership in time; stopping as leader")
        elif self._isLeader() and not any(self.isNodeConnected(n) for n in self.otherNodes):
            log.info("no follower connected to hand leadership to (the cluster is stopping?)")
        else:
            if self._isLeader() and now - self._transfer_sent_at > _TRANSFER_RETRY_S:
                # pysyncobj picks the connected follower with the most entries and
                # refuses (callback) unless it has them all: commands are paused, so
                # it catches up within a heartbeat or two.
                def sent(_: Any, error: int) -> None:
                    if error == FAIL_REASON.SUCCESS:
                        self._transfer_sent_at = now

                self.transferLeadership(None, callback=sent)
            return
        self._intake_paused = False
        self.handover_done.set()

    def _onTick(self, timeToWait: float = 0.0) -> None:
        if self.halted is not None:
            # It cannot apply the log any further: it neither votes nor answers, and
            # the others go on without it until it is upgraded.
            time.sleep(max(timeToWait, 0.1))
            return
        self._step_handover()
        if self.journal.bytes > self.max_log_bytes and not self._snapshots.busy:
            self.forceLogCompaction()
        # What the last tick appended reaches the disk before this tick counts the
        # leader's own copy toward a majority (group commit: one sync per tick).
        self.journal.sync()
        super()._onTick(timeToWait)
        # Entries that never reach apply_entry (a new leader's no-op, membership changes)
        # advance the applied index too: a read waiting for the commit index after an
        # election must not wait for the next write.
        if self.raftLastApplied > self._notified:
            self._notified = self.raftLastApplied
            self._on_applied(self._notified)
        # Appends received in this tick's poll are answered now, after one sync.
        self._SyncObj__transport.flush()
        # pysyncobj advances the commit index before it appends the tick's new
        # commands, so a lone node would commit them only at its next tick (~20 ms
        # later). A second, non-blocking tick commits them now.
        if self._isLeader() and not self.otherNodes:
            super()._onTick(0.0)

    @replicated  # type: ignore[untyped-decorator]  # pysyncobj has no types
    def apply_entry(self, data: bytes) -> bytes:
        # pysyncobj increments its applied index after the call returns.
        index = self.raftLastApplied + 1
        try:
            result = self._state.apply(index, data)
        except UnknownCommand as e:
            self.halted = str(e)
            log.critical("stopped applying the log: %s", e)
            raise
        self._on_applied(index)
        return result
