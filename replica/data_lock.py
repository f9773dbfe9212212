"""One replica process per data directory: an exclusive lock taken at start.

A second `qreg serve` on the same config would open the same LMDB, journal and
blob store beside the running one; it is refused at once, naming the pid that
holds the directory. The lock is an flock on DATA/replica.pid, released by the
kernel when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os


class DataDirInUse(RuntimeError):
    """Another process serves this data directory."""


def lock(data_dir: str) -> int:
    """Lock `data_dir` for this process; the file descriptor must stay open."""
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    path = os.path.join(data_dir, "replica.pid")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataDirInUse(
            f"{data_dir} is served by another process (pid {holder}): "
            "stop it first, or use another config"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
