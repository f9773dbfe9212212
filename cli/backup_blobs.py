"""The blobs of a backup: `qreg backup --with-blobs DIR` and `qreg restore --blobs DIR`.

A metadata backup names every blob its manifests need; with --with-blobs, each
is downloaded into DIR in the replicas' own layout (blobs/ALGORITHM/XX/HEX), its
digest checked before it is renamed into place. The metadata is taken first, so
every blob it names exists (a blob is never deleted while a manifest needs it).
A second run skips what the first completed: an interrupted backup resumes.
`restore --blobs` puts the files into the first new replica's storage; it checks
each against its digest and records it when it starts, and the others copy them
from it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from cli.cluster_client import ClusterClient
from consensus import blob_records, snapshot
from consensus.state import MetadataState
from replica.names import new_hasher


def blobs_of(backup_file: str) -> list[tuple[str, int]]:
    """(digest, size) of every blob the backup's metadata lists."""
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(backup_file))) as tmp:
        with open(backup_file, "rb") as f:
            snapshot.read_header(f)
            snapshot.extract_lmdb(f, tmp)
        state = MetadataState(tmp)
        try:
            return sorted(
                (digest, size) for digest, size, _ in state.view(blob_records.missing_from, "")
            )
        finally:
            state.close()


def relative_path(digest: str) -> str:
    algorithm, hexpart = digest.split(":", 1)
    return os.path.join("blobs", algorithm, hexpart[:2], hexpart)


def download(cluster: ClusterClient, backup_file: str, directory: str) -> tuple[int, int]:
    """Fetch every blob of the backup not yet in `directory`: (blobs fetched, bytes)."""
    wanted = blobs_of(backup_file)
    total = sum(size for _, size in wanted)
    done_bytes = fetched = 0
    for n, (digest, size) in enumerate(wanted, 1):
        path = os.path.join(directory, relative_path(digest))
        if not (os.path.isfile(path) and os.path.getsize(path) == size):
            _fetch(cluster, f"/api/v0/backup/blobs/{digest}", digest, size, path)
            fetched += 1
        done_bytes += size
        print(
            f"\rblobs {n}/{len(wanted)}  {done_bytes / (1 << 20):.1f} of "
            f"{total / (1 << 20):.1f} MiB",
            end="",
            file=sys.stderr,
            flush=True,
        )
    if wanted:
        print(file=sys.stderr)
    return fetched, total


def _fetch(cluster: ClusterClient, url: str, digest: str, size: int, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    hasher = new_hasher(digest)
    part = path + ".part"
    with cluster.stream("GET", url) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"{digest}: {r.status_code} {r.text[:200]}")
        with open(part, "wb") as f:
            for chunk in r.iter_bytes(1 << 20):
                hasher.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
    if actual != digest or os.path.getsize(part) != size:
        os.unlink(part)
        raise RuntimeError(f"{digest}: the bytes received do not match the digest")
    os.replace(part, path)


def install(directory: str, storage_root: str) -> int:
    """Put a backup's blob files into a replica's storage (hard links when possible)."""
    source = os.path.join(directory, "blobs")
    count = 0
    for root, _, files in os.walk(source):
        for name in files:
            if name.endswith(".part"):
                continue
            rel = os.path.relpath(os.path.join(root, name), directory)
            target = os.path.join(storage_root, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.exists(target):
                continue
            try:
                os.link(os.path.join(root, name), target)
            except OSError:
                shutil.copyfile(os.path.join(root, name), target)
            count += 1
    return count
