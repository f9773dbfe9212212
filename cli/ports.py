"""Checking, before anything is written, that a replica's addresses are free here."""

from __future__ import annotations

import errno
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
