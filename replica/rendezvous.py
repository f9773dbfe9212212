"""Rendezvous hashing: the order in which replicas take on a piece of work (a scan, a
webhook's deliveries), the same on every replica, so one does it and the next takes
over if it stops."""

from __future__ import annotations

import hashlib


def ranked(key: str, members: list[str]) -> list[str]:
    """`members` in the order they take on `key`: the first does it, then the next."""
    return sorted(
        members, key=lambda m: hashlib.sha256(f"{m}\0{key}".encode()).digest(), reverse=True
    )
