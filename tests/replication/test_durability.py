"""The order of syscalls proves durability: a write is on disk before it is acknowledged.

strace follows a leader and a follower (every thread) while tag writes go through
the leader one at a time, then follows a survivor through an election.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow

_LINE = re.compile(r"^(\d+)\s+(\d+):(\d+):(\d+\.\d+)\s+(\w+)\((.*)$")
_SYSCALLS = "trace=msync,fsync,fdatasync,sendto,recvfrom,write,writev,sendmsg"


class Trace:
    def __init__(self, pid: int, path: str) -> None:
        if shutil.which("strace") is None:
            raise AssertionError("strace is not installed; the test command installs it")
        self.path = path
        self.process = subprocess.Popen(
            ["strace", "-f", "-tt", "-s", "16", "-e", _SYSCALLS, "-p", str(pid), "-o", path],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attaching to every thread takes a moment

    def stop(self) -> list[tuple[int, float, str, str]]:
        """(thread id, seconds since midnight, syscall, arguments) in the order strace saw them."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        events = []
        with open(self.path) as f:
            for line in f:
                m = _LINE.match(line)
                if m:
                    seconds = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
                    events.append((int(m.group(1)), seconds, m.group(5), m.group(6)))
        return events


def raft_thread(events: list[tuple[int, float, str, str]]) -> int:
    """pysyncobj's thread: the one that msyncs the journal."""
    tids = {tid for tid, _, call, _ in events if call == "msync"}
    assert len(tids) == 1, f"msync from threads {tids}: is the journal synced at all?"
    return tids.pop()


@pytest.fixture()
def cluster(tmp_path) -> Iterator[LocalCluster]:
    c = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    yield c
    c.stop()


def test_entries_are_synced_before_they_are_acknowledged(cluster: LocalCluster, tmp_path) -> None:
    leader = cluster.leader()
    follower = (leader + 1) % 3
    manifest = push_image(cluster.urls[leader], "durable/app", "seed", "seed")
    leader_trace = Trace(cluster.pids[leader], str(tmp_path / "leader.trace"))
    follower_trace = Trace(cluster.pids[follower], str(tmp_path / "follower.trace"))
    writes = 15
    with cluster.client(leader) as client:
        for n in range(writes):
            r = client.put(
                f"/v2/durable/app/manifests/t{n}",
                content=manifest.data,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert r.status_code == 201
    time.sleep(0.5)
    on_leader = leader_trace.stop()
    on_follower = follower_trace.stop()

    # Leader: between two acknowledgements to the client, the journal was synced.
    raft_thread(on_leader)
    synced_since_last_ack = False
    acks = 0
    for _, _, call, args in on_leader:
        if call == "msync":
            synced_since_last_ack = True
        elif "HTTP/1.1 201" in args:
            assert synced_since_last_ack, "a write was acknowledged before its entry was synced"
            synced_since_last_ack = False
            acks += 1
    assert acks == writes

    # Follower: each sync comes after an append arrived and before it was answered.
    tid = raft_thread(on_follower)
    last_socket_call = None
    syncs = 0
    for thread, _, call, _ in on_follower:
        if thread != tid:
            continue
        if call in ("recvfrom", "sendto", "sendmsg"):
            last_socket_call = call
        elif call == "msync":
            syncs += 1
            assert last_socket_call == "recvfrom", "the follower answered before it synced"
    assert syncs >= writes // 2  # one sync may cover several appends


def test_term_and_vote_are_synced_before_any_election_message(
    cluster: LocalCluster, tmp_path
) -> None:
    leader = cluster.leader()
    survivor = (leader + 1) % 3
    trace = Trace(cluster.pids[survivor], str(tmp_path / "survivor.trace"))
    killed_at = time.time() % 86400
    cluster.sigkill(leader)
    cluster.leader(among=[i for i in range(3) if i != leader], excluding=leader)
    time.sleep(0.3)
    events = trace.stop()
    tid = raft_thread(events)
    # Followers talk only to the leader: the sockets used before the kill are the dead
    # leader's. Late answers on them (a starved thread may answer the last append well
    # after the kill) are not election messages; every other send after the kill is.
    leader_sockets = {
        _fd(args)
        for thread, t, call, args in events
        if thread == tid and t <= killed_at
        if call in ("sendto", "sendmsg", "recvfrom")
    }
    synced = False
    election_messages = 0
    for thread, t, call, args in events:
        if thread != tid or t <= killed_at:
            continue
        if call in ("fsync", "fdatasync"):
            synced = True
            leader_sockets.discard(_fd(args))  # the number now names a file
        elif call == "recvfrom" and args.endswith("= 0"):
            leader_sockets.discard(_fd(args))  # end of stream: the number will be reused
        elif call in ("sendto", "sendmsg") and _fd(args) not in leader_sockets:
            election_messages += 1
            assert synced, (
                "the survivor sent an election message before its term and vote were on disk"
            )
    assert election_messages > 0, "no election message seen: did the survivor take part?"


def _fd(args: str) -> int:
    m = re.match(r"\d+", args)
    assert m, f"no descriptor in {args!r}"
    return int(m.group(0))
