"""Checking, before anything is written, that a replica's addresses are free here."""

from __future__ import annotations

import errno
import random
import socket


def in_use(address: str) -> str | None:
    """Why `address` (host:port) cannot be served on this host, or None if it can (or
    is not one of this host's addresses: the cluster checks those)."""
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        # As the servers bind: connections of a process that just stopped do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"{address} is in use on this host (a running replica?)"
    return None


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands out to outgoing connections and to bind(port 0)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_block(size: int = 1, host: str = "127.0.0.1", avoid: range = range(0)) -> int:
    """A port P such that P..P+size-1 are free now, chosen outside the ephemeral range:
    a port the kernel picked for us is one it may hand to any outgoing connection
    before our server binds it (a local cluster's replicas connect to each other
    while their neighbours are still starting). `avoid`: ports meant for other servers."""
    low, high = _ephemeral_range()
    # Below the range: callers may add offsets (qreg install's Raft and gRPC ports are
    # the HTTP port + 1000 and + 2000); above it only if there is no room below.
    start, end = (10000, low - 1) if low - 10000 >= size else (high + 1, 65535 - 2000)
    for _ in range(500):
        base = random.randint(start, end - size + 1)
        block = range(base, base + size)
        if not set(block) & set(avoid) and all(in_use(f"{host}:{p}") is None for p in block):
            return base
    raise RuntimeError(f"no block of {size} free ports on {host}")
