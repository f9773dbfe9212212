"""The metadata state machine, materialised in LMDB.

`MetadataState.apply(index, command)` is deterministic: it reads and writes LMDB and
nothing else, so applying the same log twice gives byte-identical state. The index
of the last applied entry is stored in the same transaction as the entry's effect,
which makes replaying the journal after a restart idempotent.

Key layout of the single LMDB database (``\\0`` separates fields; repository
names, tags and digests can never contain it):

    m\\0applied                         -> last applied Raft index, 8 bytes big-endian
    m\\0state_digest                    -> digest of everything else (state_digest.py)
    r\\0<repo>                          -> b"" (the repository exists)
    l\\0<repo>\\0<digest>                -> blob size, 8 bytes (the repository links the blob)
    b\\0<digest>                        -> BlobRecord: size and the replicas holding it
    M\\0<repo>\\0<digest>                -> ManifestRecord
    t\\0<repo>\\0<tag>                   -> manifest digest
    f\\0<repo>\\0<subject>\\0<digest>     -> b"" (the manifest refers to subject)
    R\\0<replica id>                    -> RegisterReplica: how to reach the replica

Accounts (users, organizations, teams, permissions, tokens) live in the same
database under the keys listed in accounts.py.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import lmdb

from consensus import (
    accounts,
    caches,
    content,
    directory,
    events,
    policies,
    state_digest,
    trust,
    webhooks,
)
from proto import commands_pb2 as pb

T = TypeVar("T")

_APPLIED = b"m\0applied"
# The command envelope's version this code writes, and the highest it can apply. A
# command from a newer version is never guessed at: the replica stops applying.
COMMAND_VERSION = 1


# The commands kept in the audit log (applied or refused), with who asked.
_AUDITED = frozenset(
    [*accounts.APPLY, *caches.APPLY, *directory.APPLY]
    + [*policies.AUDITED, *trust.AUDITED, *webhooks.AUDITED]
)


class UnknownCommand(Exception):
    """A committed command this version cannot apply: a newer replica wrote it."""


_SEP = b"\0"
# Sparse file: LMDB only uses what it writes.
_MAP_SIZE = 1 << 36


_MARKER = "open-in-boot"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:  # not Linux: never assume a reboot
        return "unknown"


def _key(prefix: bytes, *parts: str) -> bytes:
    return prefix + _SEP + _SEP.join(p.encode() for p in parts)


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes
    subject_digest: str
    referrer: pb.Descriptor


class MetadataState:
    """Reads are safe from any thread; `apply` runs only on the Raft thread.

    LMDB commits without fsync: the Raft journal and snapshot are the durable
    record. A process crash loses nothing (the page cache survives), but after the
    machine itself went down while the state was open, LMDB may have lost pages,
    so it is dropped and rebuilt from the snapshot and the journal. The marker
    file `open-in-boot` (the kernel's boot id, removed at a clean close) tells
    the two apart.
    """

    def __init__(self, path: str, recent_digests: int = 4096) -> None:
        # The state holds password hashes: owner only, also for a data directory that
        # an older version created world-readable.
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
        for name in ("data.mdb", "lock.mdb"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(os.path.join(path, name), 0o600)
        self.path = path
        self.rebuilt = self._drop_if_machine_went_down()
        self._env = self._open()
        # (applied index, state digest) of the latest applies, for peers to compare.
        self._recent: collections.OrderedDict[int, int] = collections.OrderedDict()
        self._recent_max = recent_digests
        self._recent_lock = threading.Lock()  # the Raft thread writes, the event loop reads
        self._pins = 0
        self._pins_changed = threading.Condition()
        # Called on the Raft thread after a CollectBlobs entry is applied, with when its
        # apply began (time.time()), its epoch and the digests it named: the replica
        # deletes its files of them.
        self.on_collect: Callable[[float, int, list[str]], None] | None = None
        # Moves on every applied change that can void a bearer token, and on a restored
        # snapshot: what the replica's verified-token cache checks its entries against.
        self.accounts_generation = 0
        self.webhooks_generation = 0  # moves when a webhook, mirror or proxy changes
        self._ensure_digest()

    def _ensure_digest(self) -> None:
        """A state from before digests existed gets one (a full scan, once)."""
        with self._env.begin(write=True) as txn:
            if state_digest.stored(txn) is None:
                state_digest.store(txn, state_digest.full(txn))
            digest = state_digest.stored(txn)
            raw = txn.get(_APPLIED)
        self._remember(struct.unpack(">Q", raw)[0] if raw else 0, digest or 0)

    def _remember(self, index: int, digest: int) -> None:
        with self._recent_lock:
            self._recent[index] = digest
            while len(self._recent) > self._recent_max:
                self._recent.popitem(last=False)

    def digest(self) -> tuple[int, str]:
        """(applied index, state digest hex) as of now, from one read transaction."""
        with self._env.begin() as txn:
            raw = txn.get(_APPLIED)
            return (
                struct.unpack(">Q", raw)[0] if raw else 0,
                state_digest.hex_of(state_digest.stored(txn) or 0),
            )

    def recent_digests(self) -> list[tuple[int, str]]:
        """The latest (applied index, digest hex) pairs, oldest first."""
        with self._recent_lock:
            recent = list(self._recent.items())
        return [(i, state_digest.hex_of(d)) for i, d in recent]

    def verify_at_rest(self) -> tuple[int, str, str]:
        """(applied index, stored digest, recounted digest): equal unless the state
        changed behind the state machine's back (disk rot, a bad copy, a bug)."""
        with self._env.begin() as txn:
            raw = txn.get(_APPLIED)
            return (
                struct.unpack(">Q", raw)[0] if raw else 0,
                state_digest.hex_of(state_digest.stored(txn) or 0),
                state_digest.hex_of(state_digest.full(txn)),
            )

    def range_digests(self) -> tuple[int, dict[str, tuple[int, str]]]:
        """(applied index, per key-prefix (count, digest)), for qreg verify."""
        with self._env.begin() as txn:
            raw = txn.get(_APPLIED)
            return (struct.unpack(">Q", raw)[0] if raw else 0, state_digest.range_digests(txn))

    def _open(self) -> lmdb.Environment:
        return lmdb.open(
            self.path,
            map_size=_MAP_SIZE,
            sync=False,
            metasync=False,
            max_readers=1024,
            readahead=False,
            mode=0o600,
        )

    def _drop_if_machine_went_down(self) -> bool:
        marker = os.path.join(self.path, _MARKER)
        boot = _boot_id()
        dropped = False
        try:
            with open(marker) as f:
                if f.read() != boot:
                    for name in ("data.mdb", "lock.mdb"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(os.path.join(self.path, name))
                    dropped = True
        except FileNotFoundError:
            pass
        with open(marker + ".tmp", "w") as f:
            f.write(boot)
            f.flush()
            os.fsync(f.fileno())
        os.replace(marker + ".tmp", marker)
        return dropped

    def close(self) -> None:
        """A clean close: the state is synced, so it needs no rebuild at next open."""
        self._env.sync(True)
        self._env.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.path, _MARKER))

    def key_count(self) -> int:
        return int(self._env.stat()["entries"])

    def pin(self) -> PinnedState:
        """The state as it is now, held by a read transaction until released: a worker
        thread copies it while the Raft thread goes on applying."""
        with self._pins_changed:
            self._pins += 1
        return PinnedState(self, self._env, self._env.begin())

    def _unpin(self) -> None:
        with self._pins_changed:
            self._pins -= 1
            self._pins_changed.notify_all()

    def replace_with(self, staging: str) -> None:
        """Swap in the LMDB environment at `staging` (a restored snapshot)."""
        with self._pins_changed:  # a snapshot being copied from the old one finishes first
            self._pins_changed.wait_for(lambda: self._pins == 0, timeout=600)
        self._env.close()
        old = self.path + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(self.path, old)
        os.rename(staging, self.path)
        shutil.rmtree(old, ignore_errors=True)
        self._env = self._open()
        with self._recent_lock:
            self._recent.clear()
        self.accounts_generation += 1
        self.webhooks_generation += 1
        self._ensure_digest()

    def sync(self) -> None:
        self._env.sync(True)

    def copy_to_fd(self, fd: int) -> None:
        self._env.copyfd(fd, compact=True)

    # ---- applying commands -------------------------------------------------

    def highest_command_version(self) -> int:
        """The highest envelope version among the commands applied here."""
        with self._env.begin() as txn:
            raw = txn.get(state_digest.COMMAND_VERSION_KEY)
        return struct.unpack(">I", raw)[0] if raw else 0

    def applied_index(self) -> int:
        with self._env.begin() as txn:
            raw = txn.get(_APPLIED)
        return struct.unpack(">Q", raw)[0] if raw else 0

    def apply(self, index: int, data: bytes) -> bytes:
        """Apply the serialized Command at Raft `index`; returns a serialized Result."""
        began = time.time()  # not part of the state: only told to on_collect
        with self._env.begin(write=True) as txn:
            raw = txn.get(_APPLIED)
            if raw and struct.unpack(">Q", raw)[0] >= index:
                return pb.Result(error_code="", message="replayed").SerializeToString()
            command = pb.Command.FromString(data)
            kind = command.WhichOneof("kind")
            if command.version > COMMAND_VERSION or kind is None:
                raise UnknownCommand(
                    f"the command at index {index} is of envelope version {command.version}"
                    f"{'' if kind else ' and of a kind this version does not know'}; this "
                    f"replica applies up to version {COMMAND_VERSION}: upgrade it"
                )
            seen = txn.get(state_digest.COMMAND_VERSION_KEY)
            if seen is None or command.version > struct.unpack(">I", seen)[0]:
                txn.put(state_digest.COMMAND_VERSION_KEY, struct.pack(">I", command.version))
            writes = state_digest.DigestingTxn(txn, state_digest.stored(txn) or 0)
            result = content.apply(writes, command)  # type: ignore[arg-type]
            if kind in _AUDITED:
                accounts.record(writes, index, command, result)  # type: ignore[arg-type]
            if kind in events.SOURCES and not result.error_code:
                events.record(writes, index, command)  # type: ignore[arg-type]
            state_digest.store(txn, writes.digest)
            txn.put(_APPLIED, struct.pack(">Q", index))
        self._remember(index, writes.digest)
        if kind in accounts.VOIDS_TOKENS:
            self.accounts_generation += 1
        if kind in webhooks.AUDITED:
            self.webhooks_generation += 1
        if kind == "collect_blobs" and self.on_collect is not None:
            collected = command.collect_blobs
            self.on_collect(began, collected.epoch, [b.digest for b in collected.blobs])
        result.index = index
        return result.SerializeToString()

    # ---- queries ------------------------------------------------------------

    def view(self, query: Callable[..., T], *args: Any) -> T:
        """Run a read-only query (accounts.py's, for one) in a consistent snapshot."""
        with self._env.begin() as txn:
            return query(txn, *args)

    def repository_exists(self, repo: str) -> bool:
        with self._env.begin() as txn:
            return txn.get(_key(b"r", repo)) is not None

    def blob_link(self, repo: str, digest: str) -> int | None:
        """Size of the blob if `repo` links it, else None."""
        with self._env.begin() as txn:
            raw = txn.get(_key(b"l", repo, digest))
        return struct.unpack(">Q", raw)[0] if raw is not None else None

    def blob_size(self, digest: str) -> int | None:
        with self._env.begin() as txn:
            raw = txn.get(_key(b"b", digest))
        return pb.BlobRecord.FromString(raw).size if raw else None

    def blob_holders(self, digest: str) -> list[str]:
        with self._env.begin() as txn:
            raw = txn.get(_key(b"b", digest))
        return list(pb.BlobRecord.FromString(raw).replicas) if raw else []

    def resolve(self, repo: str, reference: str) -> str | None:
        """Digest of a tag, or the reference itself when it is a digest."""
        if ":" in reference:
            return reference
        with self._env.begin() as txn:
            raw = txn.get(_key(b"t", repo, reference))
        return raw.decode() if raw is not None else None

    def manifest(self, repo: str, digest: str) -> Manifest | None:
        with self._env.begin() as txn:
            raw = txn.get(_key(b"M", repo, digest))
        if raw is None:
            return None
        rec = pb.ManifestRecord.FromString(raw)
        return Manifest(digest, rec.media_type, rec.body, rec.subject_digest, rec.referrer)

    def tags(self, repo: str, after: str = "", limit: int | None = None) -> list[str]:
        return list(_scan_suffixes(self._env, _key(b"t", repo) + _SEP, after, limit))

    def repositories(
        self,
        after: str = "",
        limit: int | None = None,
        visible: Callable[[lmdb.Transaction, str], bool] | None = None,
    ) -> list[str]:
        """Repository names after `after`, up to `limit` of those `visible` keeps: one
        cursor seek, then only as many keys as the page needs (O(page), not O(all))."""
        with self._env.begin() as txn:
            out: list[str] = []
            for name in _scan_suffixes_txn(txn, b"r" + _SEP, after, None):
                if limit is not None and len(out) >= limit:
                    break
                if visible is None or visible(txn, name):
                    out.append(name)
            return out

    def replicas(self) -> list[pb.RegisterReplica]:
        with self._env.begin() as txn:
            cursor = txn.cursor()
            out = []
            if cursor.set_range(b"R" + _SEP):
                for key, value in cursor:
                    if not key.startswith(b"R" + _SEP):
                        break
                    out.append(pb.RegisterReplica.FromString(value))
            return out

    def referrers(self, repo: str, subject: str) -> list[pb.Descriptor]:
        prefix = _key(b"f", repo, subject) + _SEP
        out = []
        with self._env.begin() as txn:
            for digest in _scan_suffixes_txn(txn, prefix, "", None):
                raw = txn.get(_key(b"M", repo, digest))
                if raw is not None:
                    out.append(pb.ManifestRecord.FromString(raw).referrer)
        return out


def _scan_suffixes(
    env: lmdb.Environment, prefix: bytes, after: str, limit: int | None
) -> Iterator[str]:
    with env.begin() as txn:
        yield from _scan_suffixes_txn(txn, prefix, after, limit)


def _scan_suffixes_txn(
    txn: lmdb.Transaction, prefix: bytes, after: str, limit: int | None
) -> Iterator[str]:
    """Suffixes of keys under `prefix`, in lexical order, strictly after `after`."""
    cursor = txn.cursor()
    start = prefix + after.encode() + (b"\0" if after else b"")
    if not cursor.set_range(start):
        return
    count = 0
    for key in cursor.iternext(keys=True, values=False):
        if not bytes(key).startswith(prefix):
            return
        suffix = key[len(prefix) :]
        if _SEP in suffix:  # a deeper key (e.g. a repository whose name extends this one)
            continue
        if limit is not None and count >= limit:
            return
        count += 1
        yield bytes(suffix).decode()


class PinnedState:
    """A read-only view of the state at one moment (see MetadataState.pin)."""

    def __init__(self, owner: MetadataState, env: lmdb.Environment, txn: lmdb.Transaction) -> None:
        self._owner = owner
        self._env = env
        self._txn = txn

    def sync(self) -> None:
        """Nothing to make durable: the copy reads the pinned transaction."""

    def copy_to_fd(self, fd: int) -> None:
        self._env.copyfd(fd, compact=True, txn=self._txn)

    def release(self) -> None:
        self._txn.abort()
        self._owner._unpin()


# ---- deterministic application ------------------------------------------------
