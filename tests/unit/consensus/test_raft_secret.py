"""The Raft port unpickles what it receives: only the cluster secret stands between it and
remote code execution. A frame from a peer without the secret must never be unpickled."""

from __future__ import annotations

import os
import pickle
import socket
import struct
import time
import zlib

from consensus import MetadataState, RaftNode
from tests.cluster import free_port_block


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # what an attacker's pickle does when loaded
        return (os.mkdir, (self.path,))


def _attack(port: int, marker: str) -> None:
    payload = zlib.compress(pickle.dumps(_Touch(marker)), 3)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(struct.pack("i", len(payload)) + payload)
        time.sleep(0.5)


def _node(tmp_path, name: str, password: str | None) -> tuple[MetadataState, RaftNode, int]:
    port = free_port_block()
    state = MetadataState(str(tmp_path / name / "metadata"))
    node = RaftNode(state, str(tmp_path / name / "raft"), f"127.0.0.1:{port}", [],
                    password=password)
    assert node.wait_ready(20)
    return state, node, port


def test_a_frame_without_the_secret_is_never_unpickled(tmp_path) -> None:
    state, node, port = _node(tmp_path, "secured", "a cluster secret")
    marker = str(tmp_path / "pwned-secured")
    try:
        _attack(port, marker)
        assert not os.path.exists(marker)
        assert node.status()["role"] == "leader"
    finally:
        node.close()
        state.close()


def test_without_a_secret_the_same_frame_runs_code(tmp_path) -> None:
    # Why the secret is not optional in production: the attack works on an open port.
    state, node, port = _node(tmp_path, "open", None)
    marker = str(tmp_path / "pwned-open")
    try:
        _attack(port, marker)
        deadline = time.monotonic() + 5
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(marker)
    finally:
        node.close()
        state.close()
