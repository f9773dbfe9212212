"""The leader's read lease counts what its followers answered by when the leader sent
it, and a follower that vouches for a leader votes for no one else for a while."""

from __future__ import annotations

from consensus.read_lease import ECHO, ReadLease

QUIET = 0.4
WINDOW = 0.3


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _exchange(leader: ReadLease, follower: ReadLease, term: int, node: str = "f") -> dict:
    """One append from `leader` accepted by `follower`, and the follower's answer."""
    append = leader.stamp_append(term, {"type": "append_entries", "term": term})
    follower.on_append("leader", append, current_term=term)
    return follower.stamp_answer("leader", {"type": "next_node_idx", "success": True})


def test_an_answer_read_late_does_not_renew_the_lease() -> None:
    clock = Clock()
    leader, follower = ReadLease(clock, QUIET), ReadLease(clock, QUIET)
    answer = _exchange(leader, follower, term=3)
    leader.on_answer("f", answer)
    assert leader.holds(3, ["f", "g"], WINDOW)
    # Paused for two seconds, the leader finds an answer to an append sent before.
    clock.now += 2.0
    stale = _exchange(leader, follower, term=3)
    clock.now += 2.0
    leader.on_answer("f", stale)
    assert not leader.holds(3, ["f", "g"], WINDOW)


def test_answers_to_an_earlier_term_do_not_count() -> None:
    clock = Clock()
    leader, follower = ReadLease(clock, QUIET), ReadLease(clock, QUIET)
    leader.on_answer("f", _exchange(leader, follower, term=3))
    assert leader.holds(3, ["f", "g"], WINDOW)
    assert not leader.holds(5, ["f", "g"], WINDOW)


def test_a_lease_needs_a_majority() -> None:
    clock = Clock()
    leader = ReadLease(clock, QUIET)
    followers = {name: ReadLease(clock, QUIET) for name in "abcd"}
    leader.on_answer("a", _exchange(leader, followers["a"], term=1))
    assert not leader.holds(1, list(followers), WINDOW)  # 2 of 5
    leader.on_answer("b", _exchange(leader, followers["b"], term=1))
    assert leader.holds(1, list(followers), WINDOW)  # 3 of 5


def test_a_follower_that_just_heard_from_its_leader_refuses_its_vote() -> None:
    clock = Clock()
    leader, follower = ReadLease(clock, QUIET), ReadLease(clock, QUIET)
    _exchange(leader, follower, term=3)
    request = {"type": "request_vote", "term": 4, "last_log_term": 3, "last_log_index": 9}
    clock.now += QUIET - 0.05
    refused = follower.filter_vote_request(request)
    assert refused["term"] == 4 and refused["last_log_term"] == -1  # behind every log
    clock.now += 0.1
    assert follower.filter_vote_request(request) == request


def test_a_deposed_leaders_append_neither_silences_votes_nor_is_echoed() -> None:
    clock = Clock()
    old, new, follower = ReadLease(clock, QUIET), ReadLease(clock, QUIET), ReadLease(clock, QUIET)
    _exchange(new, follower, term=5)
    clock.now += 1.0
    follower.on_append(
        "old", old.stamp_append(4, {"type": "append_entries", "term": 4}), current_term=5
    )
    request = {"type": "request_vote", "term": 6, "last_log_term": 5, "last_log_index": 9}
    assert follower.filter_vote_request(request) == request
    assert ECHO not in follower.stamp_answer("old", {"type": "next_node_idx"})
