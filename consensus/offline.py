"""Operations on a stopped replica's metadata: emergency repair and restore from a backup.

Both leave a Raft snapshot at `raft/snapshot` that pysyncobj loads at start: the
log resumes right after the state's applied index, with the given members.
"""

from __future__ import annotations

import os
import shutil
import time

from consensus import snapshot
from consensus.durability import DurableMetaStorer
from consensus.state import MetadataState
from proto import commands_pb2 as pb


def repair_to_single(
    metadata_dir: str, raft_dir: str, self_address: str, self_id: str
) -> tuple[int, list[str]]:
    """Make a replica a cluster of one, keeping every entry it applied.

    The other replicas leave the replica list (their records would show them down
    for ever and keep their ids taken), and the Raft term carries on from the old
    journal's: terms never go back. The old journal is kept beside, renamed, for
    forensics. Returns the applied index and the ids removed.
    """
    term = int(
        DurableMetaStorer(os.path.join(raft_dir, "journal.meta")).getMeta().get("currentTerm", 0)
    )
    state = MetadataState(metadata_dir)
    try:
        lost = [r.replica_id for r in state.replicas() if r.replica_id != self_id]
        _forget_replicas(state, lost, "emergency-repair")
        _set_aside(raft_dir)
        os.makedirs(raft_dir, exist_ok=True)
        applied = _install_snapshot(raft_dir, state, [self_address], term)
        DurableMetaStorer(os.path.join(raft_dir, "journal.meta")).storeMeta(
            {"currentTerm": term, "votedForNodeId": None, "raftCommitIndex": applied}
        )
        return applied, lost
    finally:
        state.close()


def restore(backup_file: str, metadata_dir: str, raft_dir: str, cluster: list[str]) -> int:
    """Install a backup as a fresh replica's metadata; returns the backup's applied index."""
    if os.path.exists(os.path.join(raft_dir, "journal")):
        raise FileExistsError(
            f"{raft_dir} already holds a Raft journal: restore needs a fresh replica"
        )
    staging = metadata_dir + ".restore"
    shutil.rmtree(staging, ignore_errors=True)
    with open(backup_file, "rb") as f:
        snapshot.read_header(f)
        snapshot.extract_lmdb(f, staging)
    shutil.rmtree(metadata_dir, ignore_errors=True)
    os.rename(staging, metadata_dir)
    os.makedirs(raft_dir, exist_ok=True)
    state = MetadataState(metadata_dir)
    try:
        # The backup's replicas are not this cluster's, and no blob is known to be
        # anywhere yet: each replica records what it holds once it runs.
        _forget_replicas(state, [r.replica_id for r in state.replicas()], "restore")
        return _install_snapshot(raft_dir, state, cluster)
    finally:
        state.close()


def _forget_replicas(state: MetadataState, replica_ids: list[str], actor: str) -> None:
    """Apply, offline, the removal of each replica and of every blob copy it held."""
    for replica_id in replica_ids:
        command = pb.Command(
            version=1,
            actor=actor,
            at_ms=int(time.time() * 1000),
            unregister_replica=pb.UnregisterReplica(replica_id=replica_id, forget_copies=True),
        )
        state.apply(state.applied_index() + 1, command.SerializeToString())


def _install_snapshot(
    raft_dir: str, state: MetadataState, cluster: list[str], term: int = 0
) -> int:
    path = os.path.join(raft_dir, "snapshot")
    applied = snapshot.write_at_applied(path + ".tmp", state, cluster, term)
    os.replace(path + ".tmp", path)
    return applied


def _set_aside(raft_dir: str) -> None:
    if os.path.isdir(raft_dir) and os.listdir(raft_dir):
        os.rename(raft_dir, f"{raft_dir}.before-repair-{int(time.time())}")
