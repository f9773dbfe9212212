"""Snapshots written off the Raft thread, and sent to peers out of band, verified.

pysyncobj writes a snapshot with the custom serializer *in its Raft thread* and
sends it to a lagging peer *inside the Raft stream*, 64 KiB per message, as fast as
one tick can queue them. At 300,000 tags (a 425 MB LMDB) that meant seconds
without heartbeats at every compaction (elections, the term went from 7 to 41),
the whole file queued in a connection's buffer, and one joiner that installed a
file twice the leader's size, reported itself caught up and served corrupt state.

`SnapshotSerializer` takes the place of pysyncobj's Serializer (same methods):

- **Writing**: in the Raft thread it only opens an LMDB read transaction (the
  state exactly at the applied index, at once); a worker thread copies that
  transaction to `snapshot.tmp`, fsyncs it, hashes it (sha256, length), writes the
  digest beside it and renames both into place. `checkSerializing` reports
  SERIALIZING until then, so pysyncobj truncates its log only after the rename.
- **Sending**: when a peer needs the snapshot, the leader sends one small
  *descriptor* in the Raft stream: index, term, length, sha256 and its own
  address. The peer's `fetch` (given by the replica: HTTPS with the cluster's
  credentials) downloads the file in a worker thread, checks length and sha256,
  extracts the LMDB into a staging directory and checks the state digest the
  snapshot carries against a full recount. Only a file that passed all of it is
  handed to pysyncobj, which then installs it with a rename. Until then the peer
  answers nothing and the leader sends the descriptor again at its next heartbeat;
  a failed download is retried from scratch (at most once a second) and logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pysyncobj.config import SERIALIZER_STATE

from consensus import snapshot
from consensus.durability import fsync_directory

log = logging.getLogger("qreg.snapshots")

_HASH_CHUNK = 1 << 20
_RETRY_S = 1.0


@dataclass(frozen=True)
class Descriptor:
    """What a leader sends in the Raft stream instead of the snapshot's bytes."""

    index: int
    term: int
    length: int
    sha256: str
    source: str  # the leader's Raft address: the fetcher maps it to its URL

    def encode(self) -> bytes:
        return json.dumps({"qreg_snapshot": asdict(self)}).encode()

    @staticmethod
    def decode(raw: Any) -> Descriptor | None:
        try:
            fields = json.loads(bytes(raw))["qreg_snapshot"]
            return Descriptor(
                int(fields["index"]),
                int(fields["term"]),
                int(fields["length"]),
                str(fields["sha256"]),
                str(fields["source"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def file_digest(path: str) -> tuple[int, str]:
    """(length, sha256 hex) of a file."""
    digest = hashlib.sha256()
    length = 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            length += len(chunk)
    return length, digest.hexdigest()


# write(path, data): write a snapshot of the state as it is now to `path` (fsynced);
# it is called in the Raft thread and returns a function that finishes the work in a
# worker thread (the LMDB copy), so the Raft thread never waits for the disk.
Writer = Callable[[str, tuple[Any, Any, Any]], Callable[[], None]]
# fetch(descriptor, path): download the descriptor's snapshot to `path`.
Fetcher = Callable[[Descriptor, str], None]
# prepare(path, descriptor): check a downloaded snapshot's contents and stage its
# LMDB for a quick install; raises ValueError if the contents are wrong.
Preparer = Callable[[str, Descriptor], None]


class SnapshotSerializer:
    """pysyncobj's Serializer interface, with the work done off the Raft thread."""

    def __init__(
        self,
        path: str,
        self_address: str,
        write: Writer,
        read: Callable[[str], tuple[Any, Any, Any]],
        fetch: Fetcher | None,
        prepare: Preparer | None,
    ) -> None:
        self._path = path
        self._self_address = self_address
        self._write = write
        self._read = read
        self._fetch = fetch
        self._prepare = prepare
        self._lock = threading.Lock()
        self._state = SERIALIZER_STATE.NOT_SERIALIZING
        self._serializing_id: Any = None
        self._finished: tuple[int, Any] | None = None  # (state, id) to report once
        self.current: Descriptor | None = self._describe_existing()
        self._incoming = path + ".incoming"
        self._download: threading.Thread | None = None
        self._ready: Descriptor | None = None  # downloaded, verified and staged
        self._last_attempt = 0.0
        self.last_write_seconds = 0.0  # the latest snapshot's write (metrics)

    # ---- writing (log compaction) -------------------------------------------------

    @property
    def busy(self) -> bool:
        """A snapshot is being written, or its end not yet reported to pysyncobj."""
        with self._lock:
            return self._state == SERIALIZER_STATE.SERIALIZING or self._finished is not None

    def checkSerializing(self) -> tuple[int, Any]:
        with self._lock:
            if self._finished is not None:
                finished, self._finished = self._finished, None
                return finished
            if self._state == SERIALIZER_STATE.SERIALIZING:
                return SERIALIZER_STATE.SERIALIZING, self._serializing_id
            return SERIALIZER_STATE.NOT_SERIALIZING, None

    def serialize(self, data: tuple[Any, Any, Any, Any], serialize_id: Any) -> None:
        with self._lock:
            if self._state == SERIALIZER_STATE.SERIALIZING or self._finished is not None:
                return
            self._state = SERIALIZER_STATE.SERIALIZING
            self._serializing_id = serialize_id
        try:
            finish = self._write(self._path + ".tmp", data[1:])  # in the Raft thread: instant
        except Exception:
            log.exception("could not start a snapshot")
            self._done(SERIALIZER_STATE.FAILED)
            return
        threading.Thread(
            target=self._finish, args=(finish, data[1]), daemon=True, name="qreg-snapshot"
        ).start()

    def _finish(self, finish: Callable[[], None], last: Any) -> None:
        tmp = self._path + ".tmp"
        try:
            started = time.monotonic()
            finish()
            current = self.current
            if current is not None and current.index > int(last[1]):
                # A newer snapshot arrived from the leader meanwhile: keep that one.
                os.unlink(tmp)
                self._done(SERIALIZER_STATE.SUCCESS)
                return
            length, sha256 = file_digest(tmp)
            with open(tmp + ".sha256", "w") as f:
                f.write(f"{length} {sha256}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp + ".sha256", self._path + ".sha256")
            os.replace(tmp, self._path)
            fsync_directory(os.path.dirname(os.path.abspath(self._path)))
            self.current = Descriptor(
                int(last[1]), int(last[2]), length, sha256, self._self_address
            )
            self.last_write_seconds = time.monotonic() - started
            log.info(
                "snapshot written at index %d: %d bytes in %.2f s",
                last[1],
                length,
                self.last_write_seconds,
            )
            self._done(SERIALIZER_STATE.SUCCESS)
        except Exception:
            log.exception("writing a snapshot failed")
            self._done(SERIALIZER_STATE.FAILED)

    def _done(self, state: int) -> None:
        with self._lock:
            self._finished = (state, self._serializing_id)
            self._state = SERIALIZER_STATE.NOT_SERIALIZING

    def deserialize(self) -> tuple[Any, Any, Any, Any]:
        return (None, *self._read(self._path))

    def _describe_existing(self) -> Descriptor | None:
        """The snapshot already on disk at start, with the digest written beside it (or
        hashed now: a restore or an emergency repair writes none)."""
        try:
            if not os.path.exists(self._path + ".sha256") and os.path.exists(self._path):
                length_now, sha_now = file_digest(self._path)
                with open(self._path + ".sha256", "w") as f:
                    f.write(f"{length_now} {sha_now}\n")
            with open(self._path + ".sha256") as f:
                length, sha256 = f.read().split()
            with open(self._path, "rb") as f:
                header = snapshot.read_header(f)
            if os.stat(self._path).st_size != int(length):
                return None
            return Descriptor(
                int(header["last"][1]),
                int(header["last"][2]),
                int(length),
                sha256,
                self._self_address,
            )
        except (OSError, ValueError, KeyError):
            return None

    # ---- sending (leader) ------------------------------------------------------------

    def getTransmissionData(self, node: Any) -> tuple[bytes, bool, bool] | None:
        current = self.current
        if current is None:
            return None
        return current.encode(), True, True  # one message: first and last

    def cancelTransmisstion(self, node: Any) -> None:
        pass

    # ---- receiving (follower) ---------------------------------------------------------

    def setTransmissionData(self, data: Any) -> bool:
        """True once the described snapshot is downloaded, verified and in place."""
        if data is None:
            return False
        raw, _, _ = data
        wanted = Descriptor.decode(raw)
        if wanted is None:
            log.error("a peer sent a snapshot that is not a descriptor: ignored")
            return False
        with self._lock:
            ready = self._ready
            if ready is not None and ready.sha256 == wanted.sha256:
                self._ready = None
                os.replace(self._incoming, self._path)
                with open(self._path + ".sha256", "w") as f:
                    f.write(f"{wanted.length} {wanted.sha256}\n")
                fsync_directory(os.path.dirname(os.path.abspath(self._path)))
                self.current = Descriptor(
                    wanted.index, wanted.term, wanted.length, wanted.sha256, self._self_address
                )
                log.info("installing the snapshot at index %d from %s", wanted.index, wanted.source)
                return True
            busy = self._download is not None and self._download.is_alive()
            if busy or time.monotonic() - self._last_attempt < _RETRY_S or self._fetch is None:
                return False
            self._last_attempt = time.monotonic()
            self._download = threading.Thread(
                target=self._download_and_check,
                args=(wanted,),
                daemon=True,
                name="qreg-snapshot-fetch",
            )
            self._download.start()
        return False

    def _download_and_check(self, wanted: Descriptor) -> None:
        assert self._fetch is not None
        started = time.monotonic()
        try:
            with open(self._incoming, "wb"):
                pass
            self._fetch(wanted, self._incoming)
            length, sha256 = file_digest(self._incoming)
            if (length, sha256) != (wanted.length, wanted.sha256):
                raise ValueError(
                    f"received {length} bytes with sha256 {sha256[:16]}…, the "
                    f"leader described {wanted.length} with {wanted.sha256[:16]}…"
                )
            if self._prepare is not None:
                self._prepare(self._incoming, wanted)
        except Exception as e:
            log.error(
                "snapshot at index %d from %s refused: %s",
                wanted.index,
                wanted.source,
                e,
                extra={"fields": {"event": "snapshot_refused", "index": wanted.index}},
            )
            try:
                os.unlink(self._incoming)
            except FileNotFoundError:
                pass
            return
        log.info(
            "snapshot at index %d downloaded and verified (%d bytes, %.1f s)",
            wanted.index,
            wanted.length,
            time.monotonic() - started,
        )
        with self._lock:
            self._ready = wanted
