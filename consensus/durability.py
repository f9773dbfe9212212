"""Making pysyncobj's Raft durable: "committed" must mean "on stable storage on a majority".

pysyncobj 0.3.17 keeps its log in an mmap that it never msyncs, and writes its
term/vote file without fsync. A process crash loses nothing (the page cache
survives), but a power cut or kernel panic on a majority can lose acknowledged
writes, and a replica could vote twice in one term. Three small pieces fix it
without forking the library:

- `DurableJournal` wraps pysyncobj's FileJournal. Appends only mark it dirty;
  `sync()` msyncs the mapping once for everything appended since the last sync
  (group commit).
- The leader syncs at the start of every tick, before it computes the commit
  index, so it counts itself only for entries on its disk (`_Machine._onTick`).
- A follower syncs before it answers an append with success
  (`SyncingTransport`): answers wait until the end of the poll iteration, and one
  msync covers every append that arrived in it.
- `DurableMetaStorer` writes the term/vote file to a temporary file, fsyncs it,
  renames it and fsyncs the directory, before pysyncobj sends the vote.

`unsafe_skip_fsync` turns all of it off, for storage with a battery-backed cache.
"""

from __future__ import annotations

import os
from typing import Any

from pysyncobj.journal import FileJournal
from pysyncobj.pickle import dumps, loads

from consensus.read_lease import LeasingTransport


def fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableMetaStorer:
    """pysyncobj's MetaStorer (current term, vote, commit index), made durable."""

    def __init__(self, path: str) -> None:
        self._path = path

    def getMeta(self) -> dict[str, Any]:
        try:
            with open(self._path, "rb") as f:
                return dict(loads(f.read()))
        except (OSError, EOFError, ValueError):
            return {}

    def storeMeta(self, meta: dict[str, Any]) -> None:
        tmp = self._path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(dumps(meta))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        fsync_directory(os.path.dirname(os.path.abspath(self._path)))

    def getPath(self) -> str:
        return self._path


class DurableJournal:
    """A FileJournal whose appends become durable in groups, at `sync()`.

    It also counts the bytes of the commands it holds: pysyncobj keeps every entry
    in memory too, and its file format cannot address past 4 GiB, so the machine
    compacts the log once they pass a bound (machine.py).
    """

    def __init__(self, path: str, skip_fsync: bool) -> None:
        self._inner = FileJournal(path)
        self._skip = skip_fsync
        self._dirty = False
        self.syncs = 0
        self.bytes = self._count()
        if not skip_fsync:
            self._inner._FileJournal__metaStorer = DurableMetaStorer(path + ".meta")

    def sync(self) -> None:
        if self._dirty and not self._skip:
            self._inner.flush()  # msync(MS_SYNC) of the mapping: the whole log tail
            self.syncs += 1
        self._dirty = False

    def _count(self) -> int:
        return sum(len(self._inner[i][0]) for i in range(len(self._inner)))

    def add(self, command: bytes, idx: int, term: int) -> None:
        self._inner.add(command, idx, term)
        self.bytes += len(command)
        self._dirty = True

    def clear(self) -> None:
        self._inner.clear()
        self.bytes = 0
        self._dirty = True

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        # A follower's tail that the leader overwrites: counted as it goes (pysyncobj
        # calls this whenever an append overlaps entries already held, often).
        self.bytes -= sum(len(self._inner[i][0]) for i in range(entryFrom, len(self._inner)))
        self._inner.deleteEntriesFrom(entryFrom)
        self._dirty = True

    def deleteEntriesTo(self, entryTo: int) -> None:
        # After a snapshot: what remains is what was appended while it was written.
        self._inner.deleteEntriesTo(entryTo)
        self.bytes = self._count()
        self._dirty = True

    def __getitem__(self, item: Any) -> Any:
        return self._inner[item]

    def __len__(self) -> int:
        return len(self._inner)

    def __getattr__(self, name: str) -> Any:
        # Terms, votes, commit index and timers: pysyncobj's own (made durable by the meta storer).
        return getattr(self._inner, name)


class SyncingTransport(LeasingTransport):
    """Holds a follower's "stored" answers until the journal is synced.

    The leader sends one append message per command, so syncing per answer would
    cost one msync per entry. Answers are instead kept until the end of the poll
    iteration (`flush`), when one sync covers every append that arrived in it.
    Any other message to a node first flushes what is held, so a node's messages
    keep their order.
    """

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:
        self._journal_owner = syncObj
        self._held: list[tuple[Any, Any]] = []
        super().__init__(syncObj, selfNode, otherNodes)

    def _onMessageReceived(self, node: Any, message: Any) -> None:
        super()._onMessageReceived(node, message)
        if isinstance(message, dict) and message.get("type") == "next_node_idx":
            # A peer answered the leader: a read waiting for the lease may go now.
            self._journal_owner.on_peer_answer()

    def send(self, node: Any, message: Any) -> bool:
        if (
            isinstance(message, dict)
            and message.get("type") == "next_node_idx"
            and message.get("success")
        ):
            self._held.append((node, message))
            return True
        if self._held:
            self.flush()
        return bool(super().send(node, message))

    def flush(self) -> None:
        """Sync the journal, then send the answers it makes true."""
        if not self._held:
            return
        self._journal_owner.sync_journal()
        held, self._held = self._held, []
        for node, message in held:
            super().send(node, message)
