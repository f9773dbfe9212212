"""Which replicas hold a blob when the cluster keeps fewer copies than it has replicas.

With `blobs.replication_factor` at 0 every replica holds every blob. Set to N,
a blob is kept on N replicas, never fewer than a majority, so that any
surviving majority still holds a copy of every acknowledged blob. A push goes
to the receiving replica and peers picked at random; when copies go missing
(a holder removed, a copy lost), the replicas that fill the gap are chosen by
rendezvous hashing of the digest, so every replica reaches the same choice
without talking to the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection


def target_copies(factor: int, members: int) -> int:
    """How many replicas should hold each blob."""
    majority = members // 2 + 1
    return members if factor <= 0 else min(members, max(factor, majority))


def fills_gap(
    digest: str, replica_id: str, holders: Collection[str], members: Collection[str], target: int
) -> bool:
    """Whether `replica_id`, not a holder, is one of the replicas that should copy the blob."""
    live = set(holders) & set(members)
    missing = target - len(live)
    if missing <= 0 or replica_id in live:
        return False
    candidates = sorted(
        (m for m in members if m not in live),
        key=lambda m: hashlib.sha256(f"{digest}/{m}".encode()).digest(),
        reverse=True,
    )
    return replica_id in candidates[:missing]
