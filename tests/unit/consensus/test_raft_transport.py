"""The guarded Raft port: strangers' frames are refused on their header, strangers are few
and short-lived, and a node keeps committing while its port is flooded."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import pytest

from consensus import MetadataState, RaftNode, raft_transport
from proto import commands_pb2 as pb
from tests.cluster import free_port_block
from tests.raft_flood import flood

pytestmark = pytest.mark.slow  # starts Raft nodes (a few seconds)


def _node(tmp_path, port: int) -> tuple[MetadataState, RaftNode]:
    state = MetadataState(str(tmp_path / "metadata"))
    node = RaftNode(state, str(tmp_path / "raft"), f"127.0.0.1:{port}", [], password="secret")
    assert node.wait_ready(20)
    return state, node


def _closed_by_peer(s: socket.socket, timeout: float = 3.0) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_huge_declared_frame_is_refused_on_its_header(tmp_path) -> None:
    port = free_port_block()
    state, node = _node(tmp_path, port)
    try:
        for declared in (2**31 - 1, raft_transport.MAX_HELLO + 1, 0, -5):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(struct.pack("i", declared) + b"\0" * 100)
                assert _closed_by_peer(s), declared
    finally:
        node.close()
        state.close()


def test_idle_strangers_are_dropped_and_capped(tmp_path) -> None:
    port = free_port_block()
    state, node = _node(tmp_path, port)
    sockets = []
    try:
        for _ in range(raft_transport.MAX_STRANGERS + 10):
            sockets.append(socket.create_connection(("127.0.0.1", port)))
            time.sleep(0.02)
        # The oldest were dropped to make room; the rest go at the handshake deadline.
        assert _closed_by_peer(sockets[0], 1.0)
        assert all(_closed_by_peer(s, raft_transport.HELLO_DEADLINE_S + 2) for s in sockets)
    finally:
        for s in sockets:
            s.close()
        node.close()
        state.close()


def test_a_flooded_port_keeps_committing(tmp_path) -> None:
    port = free_port_block()
    state, node = _node(tmp_path, port)
    stop = threading.Event()

    flooders = [threading.Thread(target=flood, args=(port, stop), daemon=True) for _ in range(4)]
    for t in flooders:
        t.start()

    async def writes() -> int:
        done = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            await node.propose(
                pb.Command(
                    link_blob=pb.LinkBlob(
                        repository="f/r", digest=f"sha256:{done:064x}", size=1, replica_id="r0"
                    )
                )
            )
            done += 1
        return done

    try:
        assert asyncio.run(writes()) > 0
    finally:
        stop.set()
        for t in flooders:
            t.join(timeout=5)
        node.close()
        state.close()


def test_a_node_named_by_host_name_binds_and_leads(tmp_path) -> None:
    """Compose and Kubernetes name replicas (replica-0:6000, qreg-0.qreg-peers:6000):
    the Raft port is bound at the address the name resolves to."""
    port = free_port_block()
    state = MetadataState(str(tmp_path / "metadata"))
    node = RaftNode(state, str(tmp_path / "raft"), f"localhost:{port}", [], password="secret")
    try:
        assert node.wait_ready(20)
        deadline = time.monotonic() + 10
        while node.status()["role"] != "leader":
            assert time.monotonic() < deadline, node.status()
            time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # listening
    finally:
        node.close()
        state.close()
