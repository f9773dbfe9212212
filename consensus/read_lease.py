"""The leader's read lease: when its commit index is safe to serve a read at.

A leader may answer a read from its own state only if no other leader can have
committed anything it lacks. pysyncobj gives no such guarantee, for two reasons
found under faults (a tag acknowledged, then 404 from another replica):

- it stamps a peer's answer with the time it is *received*: a leader paused
  (SIGSTOP, a long GC, a frozen VM) reads its peers' old answers on waking and
  believes a majority heard from it a moment ago, while they elected a new
  leader that took writes;
- a follower that hears a vote request at a higher term adopts it and may vote
  at once, however recently it heard from the leader: a restarted replica can
  be elected while the old leader still trusts its lease.

Both are closed here, as in the Raft dissertation (section 6.4.1, leases; 4.2.3,
disruptive servers):

- the leader stamps each append it sends with (term, send time); a follower
  echoes the stamp of the last append it accepted in its answer; the lease
  counts echoes from the current term that are younger than the window, so an
  answer read late proves nothing newer than the append it answered;
- a follower refuses its vote (it still adopts the term, so a stale leader's
  appends are refused and the cluster moves on) until VOTE_QUIET_S after it last
  accepted an append. A follower that echoed a stamp sent at time t votes for no
  one before t + VOTE_QUIET_S, and its own election timer fires no earlier: a
  lease window shorter than that (with margin for clock rates) cannot overlap
  another leader's term.

The two extra message fields are ignored by pysyncobj itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pysyncobj.monotonic import monotonic as raft_clock

from consensus.raft_transport import GuardedTransport

SENT = "qreg_sent"  # on an append: (term, leader's send time)
ECHO = "qreg_echo"  # on an answer: the SENT of the last append accepted from that node


class ReadLease:
    """Both halves of the lease, kept by each node's transport (Raft thread)."""

    def __init__(self, clock: Callable[[], float], vote_quiet_s: float) -> None:
        self._clock = clock
        self._vote_quiet_s = vote_quiet_s
        self._heard_leader_at = float("-inf")
        self._last_stamp: dict[Any, tuple[int, float]] = {}
        self._echoes: dict[Any, tuple[int, float]] = {}

    # ---- leader side ----------------------------------------------------------------

    def stamp_append(self, term: int, message: dict[str, Any]) -> dict[str, Any]:
        return {**message, SENT: (term, self._clock())}

    def on_answer(self, node: Any, message: dict[str, Any]) -> None:
        echo = message.get(ECHO)
        if echo is not None:
            self._echoes[node] = (int(echo[0]), float(echo[1]))

    def holds(self, term: int, others: Any, window: float) -> bool:
        """True if a majority (this leader included) answered appends of `term` sent
        within the last `window` seconds."""
        deadline = self._clock() - window
        fresh = 1
        for node in others:
            echo = self._echoes.get(node)
            if echo is not None and echo[0] == term and echo[1] > deadline:
                fresh += 1
        return fresh > (len(others) + 1) / 2

    # ---- follower side --------------------------------------------------------------

    def on_append(self, node: Any, message: dict[str, Any], current_term: int) -> None:
        """Before pysyncobj handles an append: note it if pysyncobj will accept it."""
        if message.get("term", -1) < current_term:
            return  # a deposed leader's: pysyncobj ignores it, and so do we
        self._heard_leader_at = self._clock()
        stamp = message.get(SENT)
        if stamp is not None:
            self._last_stamp[node] = stamp

    def leader_silent_for(self) -> float:
        """Seconds since this node last accepted an append from a leader."""
        return self._clock() - self._heard_leader_at

    def stamp_answer(self, node: Any, message: dict[str, Any]) -> dict[str, Any]:
        stamp = self._last_stamp.get(node)
        return message if stamp is None else {**message, ECHO: stamp}

    def filter_vote_request(self, message: dict[str, Any]) -> dict[str, Any]:
        """A vote request as pysyncobj should see it: while a leader was heard from
        within VOTE_QUIET_S, one that cannot win this node's vote."""
        if self._clock() - self._heard_leader_at >= self._vote_quiet_s:
            return message
        # pysyncobj adopts the higher term first, then refuses a candidate whose log
        # is behind its own: a last term of -1 is behind every log.
        return {**message, "last_log_term": -1}


class LeasingTransport(GuardedTransport):
    """The guarded transport, carrying the lease's stamps and echoes."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:
        self.lease = ReadLease(raft_clock, syncObj.conf.raftMinTimeout)
        super().__init__(syncObj, selfNode, otherNodes)

    def _onMessageReceived(self, node: Any, message: Any) -> None:
        if isinstance(message, dict):
            kind = message.get("type")
            if kind == "append_entries":
                self.lease.on_append(node, message, self._syncObj.raftCurrentTerm)
            elif kind == "request_vote":
                message = self.lease.filter_vote_request(message)
            elif kind == "next_node_idx":
                self.lease.on_answer(node, message)
        super()._onMessageReceived(node, message)

    def send(self, node: Any, message: Any) -> bool:
        if isinstance(message, dict):
            kind = message.get("type")
            if kind == "append_entries":
                message = self.lease.stamp_append(message["term"], message)
            elif kind == "next_node_idx":
                message = self.lease.stamp_answer(node, message)
        return bool(super().send(node, message))
