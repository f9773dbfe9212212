"""The snapshot file: what pysyncobj compacts its log into, and what a backup is.

Layout: an 8-byte big-endian header length, a JSON header, then a compacted copy
of the LMDB environment (its data.mdb). The header holds what pysyncobj needs to
resume after the snapshot: the last two applied log entries (command, index,
term) and the cluster's Raft addresses.

A backup is the same file. Restoring it, or repairing a replica into a cluster
of one, writes such a snapshot whose entries are no-ops at the state's applied
index, with term 0 so any later leader's entries have higher terms.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import tempfile
from typing import Any, BinaryIO

from consensus.state import MetadataState, PinnedState

_HEADER = struct.Struct(">Q")
# pysyncobj's encoding of a no-op log entry (_COMMAND_TYPE.NO_OP).
NO_OP = b"\x01"

Entry = tuple[bytes, int, int]


def write(
    path: str,
    state: MetadataState | PinnedState,
    last: Entry,
    before_last: Entry,
    cluster: list[str],
) -> None:
    """Write a snapshot of `state` to `path` (fsynced; the caller renames it into place)."""
    header = json.dumps(
        {
            "last": _entry_to_json(last),
            "before_last": _entry_to_json(before_last),
            "cluster": sorted(cluster),
        }
    ).encode()
    state.sync()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, _HEADER.pack(len(header)) + header)
        state.copy_to_fd(fd)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_at_applied(path: str, state: MetadataState, cluster: list[str], term: int = 0) -> int:
    """A snapshot that resumes a log right after the state's applied index, at `term`."""
    applied = state.applied_index()
    index = max(applied, 2)
    write(path, state, (NO_OP, index, term), (NO_OP, index - 1, term), cluster)
    return applied


def read_header(f: BinaryIO) -> dict[str, Any]:
    (length,) = _HEADER.unpack(f.read(_HEADER.size))
    header = json.loads(f.read(length))
    header["last"] = _entry_from_json(header["last"])
    header["before_last"] = _entry_from_json(header["before_last"])
    return dict(header)


def extract_lmdb(f: BinaryIO, directory: str) -> None:
    """Write the LMDB copy that follows the header (f is positioned after it) into `directory`."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "data.mdb"), "wb") as out:
        shutil.copyfileobj(f, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def backup_to(path: str, state: MetadataState, cluster: list[str]) -> int:
    """Write a consistent backup of a live state to `path`; returns its applied index.

    LMDB's copy runs in one read transaction, so it is consistent; the applied
    index is read back from the copy itself, not from the live state that kept moving.
    """
    with tempfile.TemporaryDirectory(dir=os.path.dirname(state.path)) as work:
        copy_dir = os.path.join(work, "copy")
        os.makedirs(copy_dir)
        fd = os.open(os.path.join(copy_dir, "data.mdb"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            state.copy_to_fd(fd)
        finally:
            os.close(fd)
        copy = MetadataState(copy_dir)
        try:
            applied = write_at_applied(path, copy, cluster)
        finally:
            copy.close()
    return applied


def _entry_to_json(entry: Entry) -> list[Any]:
    return [base64.b64encode(entry[0]).decode(), entry[1], entry[2]]


def _entry_from_json(raw: list[Any]) -> Entry:
    return base64.b64decode(raw[0]), int(raw[1]), int(raw[2])


__all__ = ["backup_to", "extract_lmdb", "read_header", "write", "write_at_applied"]
