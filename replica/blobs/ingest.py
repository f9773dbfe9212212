"""A blob on its way in: received (and mirrored to peers as it arrives), verified and
committed, then replicated to a majority. The upload handlers only parse requests and
call these; what comes back is the size and the replicas holding the blob (each with
the garbage collections it had applied before it committed its copy: consensus/gc.py),
for the registry to link it in a repository.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from replica.blobs.mirror import PeerMirror
from replica.blobs.replication import BlobReplicator
from replica.blobs.store import BlobWriter
from replica.blobs.uploads import Upload, UploadSessions

Receive = Callable[[BlobWriter, PeerMirror | None], Awaitable[int]]


Copies = dict[str, int]  # replica id -> collections it had applied before committing


async def whole(
    replicator: BlobReplicator, receive: Receive, digest: str, length: int | None
) -> tuple[int, Copies]:
    """A blob sent in one request: (its size, the replicas holding it). Nothing of it
    stays if receiving or the digest check fails."""
    store = replicator.store
    seen = replicator.collections_seen()
    writer = store.writer(digest)
    mirror = replicator.mirror()
    try:
        await receive(writer, mirror)
        size = await asyncio.to_thread(store.commit, writer, digest, length)
    except BaseException:
        writer.discard()
        if mirror is not None:
            mirror.abort()
        raise
    peers = await replicator.replicate(digest, size, mirror)
    return size, {replicator.holder_id: seen, **peers}


def session_mirror(replicator: BlobReplicator, upload: Upload) -> PeerMirror | None:
    """The session's mirror to peers, started with its first bytes (a session resumed
    after a restart has none: its blob is sent to peers once committed)."""
    if upload.mirror is None and upload.size == 0:
        upload.mirror = replicator.mirror()
    return upload.mirror


async def finish_session(
    replicator: BlobReplicator, sessions: UploadSessions, upload: Upload, digest: str
) -> tuple[int, Copies]:
    """Commit a session's bytes as `digest` and replicate them; the session ends either
    way (a failed digest check discards its bytes and aborts its mirror)."""
    mirror = session_mirror(replicator, upload)
    seen = replicator.collections_seen()
    try:
        size = await asyncio.to_thread(replicator.store.commit, upload.writer, digest)
    except BaseException:
        sessions.remove(upload)
        raise
    upload.mirror = None  # handed over to the replication below
    sessions.remove(upload)
    peers = await replicator.replicate(digest, size, mirror)
    return size, {replicator.holder_id: seen, **peers}
