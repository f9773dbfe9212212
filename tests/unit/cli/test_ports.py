"""Ports chosen for local servers stay out of the kernel's ephemeral range."""

from __future__ import annotations

import socket

from cli import ports


def test_a_free_block_is_bindable_and_outside_the_ephemeral_range() -> None:
    low, high = ports._ephemeral_range()
    for _ in range(20):
        base = ports.free_block(5, avoid=range(20000, 20100))
        block = range(base, base + 5)
        assert all(not low <= p <= high for p in block)
        assert not set(block) & set(range(20000, 20100))
        with socket.socket() as s:
            s.bind(("127.0.0.1", base))
