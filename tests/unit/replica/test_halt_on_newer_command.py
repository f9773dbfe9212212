"""A replica that meets a committed command newer than it stops applying, says why on
/health (503), and applies nothing after it."""

from __future__ import annotations

import time

from consensus.state import COMMAND_VERSION
from proto import commands_pb2 as pb
from tests.unit.replica.in_process import replica


def test_a_newer_command_halts_the_replica_loudly(tmp_path) -> None:
    with replica(str(tmp_path / "r")) as client:
        registry = client.app.state.context.registry
        newer = pb.Command(
            version=COMMAND_VERSION + 1,
            link_blob=pb.LinkBlob(repository="a/b", digest="sha256:" + "1" * 64),
        )
        try:
            client.portal.call(registry.raft.propose, newer, 2.0)  # type: ignore[union-attr]
        except Exception:
            pass
        deadline = time.monotonic() + 5
        while (health := client.get("/health")).json().get("halted") is None:
            assert time.monotonic() < deadline, health.json()
            time.sleep(0.05)
        assert health.status_code == 503
        assert f"applies up to version {COMMAND_VERSION}" in health.json()["halted"]
        # Committed, and not applied: the applied index stops just before it.
        index = int(health.json()["halted"].split(" at index ")[1].split()[0])
        assert registry.state.applied_index() == index - 1
        assert registry.raft.status()["commit_index"] >= index
