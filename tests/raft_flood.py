"""What the Raft-port attack did: claim a ~2 GB frame, then stream zeros; reconnect
when dropped. Shared by the transport's unit test and the cluster flood test."""

from __future__ import annotations

import socket
import struct
import threading


def flood(port: int, stop: threading.Event) -> None:
    zeros = b"\0" * 65536
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(struct.pack("i", 2**31 - 1))
                while not stop.is_set():
                    s.sendall(zeros)
        except OSError:
            continue
