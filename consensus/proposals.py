"""Why a proposal failed, and which proposals are made again when the leader moves."""

from __future__ import annotations

from pysyncobj import FAIL_REASON


class NoQuorum(Exception):
    """The command could not be committed: no leader or no majority reachable."""

    def __init__(self, message: str, reason: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason  # pysyncobj's FAIL_REASON, when it gave one


_FAIL_NAMES = {
    FAIL_REASON.QUEUE_FULL: "queue full",
    FAIL_REASON.MISSING_LEADER: "no leader",
    FAIL_REASON.DISCARDED: "discarded by a new leader",
    FAIL_REASON.NOT_LEADER: "not leader",
    FAIL_REASON.LEADER_CHANGED: "leader changed",
    FAIL_REASON.REQUEST_DENIED: "request denied",
}

# Failures in which the leader moved: the command may not have been appended anywhere
# (it waited in a departing leader's queue), or may have been; or it was appended by a
# leader that died and then overwritten by the next (DISCARDED: never committed).
_LEADER_MOVED = {
    FAIL_REASON.LEADER_CHANGED,
    FAIL_REASON.NOT_LEADER,
    FAIL_REASON.MISSING_LEADER,
    FAIL_REASON.DISCARDED,
}
# Commands that leave the same state and answer when applied twice: proposed again
# when the leader moved under them, so a push never fails for a leadership handover.
_SAFE_TWICE = frozenset({"link_blob", "put_manifest", "register_replica"})


def failure(reason: int) -> NoQuorum:
    """The error for a pysyncobj failure reason."""
    return NoQuorum(_FAIL_NAMES.get(reason, str(reason)), reason)


def may_propose_again(kind: str | None, reason: int | None) -> bool:
    """Whether a command of this kind that failed for this reason is proposed again."""
    return kind in _SAFE_TWICE and reason in _LEADER_MOVED
