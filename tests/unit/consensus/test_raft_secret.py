"""The Raft port unpickles what it receives: only the cluster secret stands between it and
remote code execution. A frame from a peer without the secret must never be unpickled."""

from __future__ import annotations

import os
import pickle
import socket
import struct
import time
import zlib

import pytest

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


def _node(tmp_path, name: str, password: str) -> tuple[MetadataState, RaftNode, int]:
    port = free_port_block()
    state = MetadataState(str(tmp_path / name / "metadata"))
    node = RaftNode(
        state, str(tmp_path / name / "raft"), f"127.0.0.1:{port}", [], password=password
    )
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


def test_a_node_without_a_secret_refuses_to_start(tmp_path) -> None:
    # Without it, the frame above would run code: pysyncobj unpickles what it receives.
    state = MetadataState(str(tmp_path / "open" / "metadata"))
    try:
        with pytest.raises(ValueError, match="secret"):
            RaftNode(state, str(tmp_path / "open" / "raft"), "127.0.0.1:1", [], password="")
    finally:
        state.close()
