"""A blob on its way in: received (and mirrored to peers as it arrives), verified and
committed, then replicated to a majority. The upload handlers only parse requests and
call these; what comes back is the size and the replicas holding the blob, for the
registry to link it in a repository.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from replica.blobs.mirror import PeerMirror
from replica.blobs.replication import BlobReplicator
from replica.blobs.store import BlobWriter
from replica.blobs.uploads import Upload, UploadSessions

Receive = Callable[[BlobWriter, PeerMirror | None], Awaitable[int]]


async def whole(
    replicator: BlobReplicator, receive: Receive, digest: str, length: int | None
) -> tuple[int, list[str]]:
    """A blob sent in one request: (its size, the peers holding it). Nothing of it stays
    if receiving or the digest check fails."""
    store = replicator.store
    writer = store.writer()
    mirror = replicator.mirror()
    try:
        await receive(writer, mirror)
        size = await asyncio.to_thread(store.commit, writer, digest, length)
    except BaseException:
        writer.discard()
        if mirror is not None:
            mirror.abort()
        raise
    return size, await replicator.replicate(digest, size, mirror)


def session_mirror(replicator: BlobReplicator, upload: Upload) -> PeerMirror | None:
    """The session's mirror to peers, started with its first bytes (a session resumed
    after a restart has none: its blob is sent to peers once committed)."""
    if upload.mirror is None and upload.size == 0:
        upload.mirror = replicator.mirror()
    return upload.mirror


async def finish_session(
    replicator: BlobReplicator, sessions: UploadSessions, upload: Upload, digest: str
) -> tuple[int, list[str]]:
    """Commit a session's bytes as `digest` and replicate them; the session ends either
    way (a failed digest check discards its bytes and aborts its mirror)."""
    mirror = session_mirror(replicator, upload)
    try:
        size = await asyncio.to_thread(replicator.store.commit, upload.writer, digest)
    except BaseException:
        sessions.remove(upload)
        raise
    upload.mirror = None  # handed over to the replication below
    sessions.remove(upload)
    return size, await replicator.replicate(digest, size, mirror)
