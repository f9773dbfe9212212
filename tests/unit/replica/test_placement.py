"""Placement under a replication factor: never fewer copies than a majority, and every
replica reaches the same choice of who fills a gap without asking the others."""

from __future__ import annotations

from replica.blobs.placement import fills_gap, target_copies

MEMBERS = [f"replica-{n}" for n in range(5)]


def test_the_target_is_never_below_a_majority_nor_above_the_members() -> None:
    assert target_copies(0, 5) == 5  # 0: every replica
    assert target_copies(1, 5) == 3  # a majority at least
    assert target_copies(4, 5) == 4
    assert target_copies(9, 5) == 5
    assert target_copies(2, 1) == 1


def test_exactly_the_missing_number_of_replicas_fill_a_gap() -> None:
    for n in range(50):
        digest = f"sha256:{n:064x}"
        holders = ["replica-0"]
        chosen = [m for m in MEMBERS if fills_gap(digest, m, holders, MEMBERS, 3)]
        assert len(chosen) == 2 and "replica-0" not in chosen


def test_holders_that_left_do_not_count() -> None:
    digest = "sha256:" + "a" * 64
    gone = ["replica-8", "replica-9", "replica-0"]  # two of them are no longer members
    chosen = [m for m in MEMBERS if fills_gap(digest, m, gone, MEMBERS, 3)]
    assert len(chosen) == 2


def test_a_full_blob_needs_no_one() -> None:
    digest = "sha256:" + "b" * 64
    assert not any(fills_gap(digest, m, MEMBERS[:3], MEMBERS, 3) for m in MEMBERS)


def test_choices_spread_over_the_replicas() -> None:
    picks = {m: 0 for m in MEMBERS}
    for n in range(500):
        for m in MEMBERS:
            if fills_gap(f"sha256:{n:064x}", m, [], MEMBERS, 3):
                picks[m] += 1
    assert all(200 < count < 400 for count in picks.values()), picks  # about 300 each
