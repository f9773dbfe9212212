"""Log compaction into LMDB snapshots, emergency repair and restore, on a real Raft node of one."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

from consensus import MetadataState, RaftNode, offline, snapshot
from proto import commands_pb2 as pb
from tests.cluster import free_port_block


def link(i: int) -> pb.Command:
    return pb.Command(
        link_blob=pb.LinkBlob(repository="s/r", digest=f"sha256:{i:064x}", size=i, replica_id="r0")
    )


def start(
    directory: str, address: str, compact_every: int = 20000, **options: int
) -> tuple[MetadataState, RaftNode]:
    state = MetadataState(os.path.join(directory, "metadata"))
    node = RaftNode(
        state,
        os.path.join(directory, "raft"),
        address,
        [],
        password="test secret",
        compact_every=compact_every,
        **options,
    )
    assert node.wait_ready(20)
    return state, node


def write(node: RaftNode, numbers: range) -> None:
    async def go() -> None:
        for i in numbers:
            result = await node.propose(link(i))
            assert result.error_code == ""

    asyncio.run(go())


def wait_for_snapshot(directory: str) -> None:
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(directory, "raft", "snapshot")):
        assert time.monotonic() < deadline, "no snapshot was written"
        time.sleep(0.05)


def test_state_survives_losing_lmdb_after_compaction(tmp_path) -> None:
    address = f"127.0.0.1:{free_port_block()}"
    state, node = start(str(tmp_path), address, compact_every=50)
    write(node, range(1, 201))
    node.compact()
    wait_for_snapshot(str(tmp_path))
    write(node, range(201, 221))
    node.close()
    state.close()
    # Without its LMDB, the replica rebuilds from the snapshot plus the journal's tail.
    shutil.rmtree(tmp_path / "metadata")
    state, node = start(str(tmp_path), address)
    deadline = time.monotonic() + 10
    while state.blob_link("s/r", f"sha256:{220:064x}") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert all(state.blob_link("s/r", f"sha256:{i:064x}") == i for i in range(1, 221))
    node.close()
    state.close()


def test_the_log_is_compacted_by_its_bytes_however_few_its_entries(tmp_path) -> None:
    """A large state spaces snapshots by its keys; large commands must not pile up in
    memory (and past the journal's 4 GiB) meanwhile."""
    address = f"127.0.0.1:{free_port_block()}"
    state, node = start(str(tmp_path), address, compact_every=1_000_000, max_log_bytes=20_000)
    write(node, range(1, 401))  # ~50 kB of commands
    wait_for_snapshot(str(tmp_path))
    deadline = time.monotonic() + 10
    while node.status()["log_bytes"] > 20_000:
        assert time.monotonic() < deadline, node.status()
        time.sleep(0.05)
    held = node.status()["log_bytes"]
    node.close()
    state.close()
    # Counted again from the journal file at start (plus the new term's one-byte no-op).
    state, node = start(str(tmp_path), address, compact_every=1_000_000, max_log_bytes=20_000)
    assert node.status()["log_bytes"] in (held, held + 1)
    node.close()
    state.close()


def test_backup_then_restore_into_a_fresh_replica(tmp_path) -> None:
    state, node = start(str(tmp_path / "a"), f"127.0.0.1:{free_port_block()}")
    write(node, range(1, 31))
    backup = str(tmp_path / "backup.qreg")
    applied = snapshot.backup_to(backup, state, [])
    assert applied >= 30
    node.close()
    state.close()
    address = f"127.0.0.1:{free_port_block()}"
    fresh = tmp_path / "b"
    offline.restore(backup, str(fresh / "metadata"), str(fresh / "raft"), [address])
    state, node = start(str(fresh), address)
    assert all(state.blob_link("s/r", f"sha256:{i:064x}") == i for i in range(1, 31))
    write(node, range(31, 41))  # new entries apply after the restored ones
    assert state.blob_link("s/r", f"sha256:{40:064x}") == 40
    node.close()
    state.close()


def test_repair_to_single_keeps_everything(tmp_path) -> None:
    address = f"127.0.0.1:{free_port_block()}"
    state, node = start(str(tmp_path), address)
    write(node, range(1, 21))
    term = node.status()["term"]
    node.close()
    state.close()
    offline.repair_to_single(
        str(tmp_path / "metadata"), str(tmp_path / "raft"), address, "replica-0"
    )
    state, node = start(str(tmp_path), address)
    write(node, range(21, 26))
    assert node.status()["term"] > term  # terms never go back
    assert all(state.blob_link("s/r", f"sha256:{i:064x}") == i for i in range(1, 26))
    node.close()
    state.close()


def test_lmdb_is_rebuilt_after_the_machine_went_down(tmp_path) -> None:
    address = f"127.0.0.1:{free_port_block()}"
    state, node = start(str(tmp_path), address)
    write(node, range(1, 51))
    node.close()
    # The machine went down with the state open: its marker names another boot.
    marker = tmp_path / "metadata" / "open-in-boot"
    assert marker.exists()
    marker.write_text("some-earlier-boot")
    state, node = start(str(tmp_path), address)
    assert state.rebuilt
    deadline = time.monotonic() + 10
    while state.blob_link("s/r", f"sha256:{50:064x}") is None:
        assert time.monotonic() < deadline, "not rebuilt from the journal"
        time.sleep(0.05)
    assert all(state.blob_link("s/r", f"sha256:{i:064x}") == i for i in range(1, 51))
    node.close()
    state.close()
    assert not marker.exists()
    state = MetadataState(str(tmp_path / "metadata"))
    assert not state.rebuilt  # a clean close needs no rebuild
    state.close()
