"""Push mirroring: a tag pushed here is copied to a repository on another registry
(its children first for an index, blobs the other side lacks, then the manifest by
tag). Delivered like a webhook (replica/webhooks/deliverer.py): one replica per
mirror, retried with backoff, an outcome per pushed tag in its delivery log."""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Iterator

from consensus import MetadataState
from consensus.state import Manifest
from proto import commands_pb2 as pb
from replica.blobs.peer_fetch import fetch_to_disk
from replica.blobs.store import BlobStore
from replica.mirror.remote import RemoteError, RemoteRegistry
from replica.registry import Registry
from replica.webhooks.delivery import Outcome

PUSH_MIRROR = "push_mirror"
_INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def mirrors(hook: pb.Webhook, event: pb.Event) -> bool:
    """Whether a push mirror copies this event: a tag push matching its pattern."""
    return bool(event.type == "push" and event.tag) and fnmatch.fnmatchcase(
        event.tag, hook.tag_pattern or "*"
    )


def _tree(state: MetadataState, repository: str, digest: str) -> list[Manifest]:
    """The manifest and, for an index, its children: children first."""
    found = state.manifest(repository, digest)
    if found is None:
        raise RemoteError(f"{repository}@{digest} is no longer here")
    out = []
    if found.media_type in _INDEXES:
        for child in json.loads(found.body).get("manifests") or []:
            out += _tree(state, repository, child["digest"])
    return [*out, found]


def _blobs(manifest: Manifest) -> list[str]:
    if manifest.media_type in _INDEXES:
        return []
    doc = json.loads(manifest.body)
    return [d["digest"] for d in [doc.get("config") or {}, *(doc.get("layers") or [])] if d]


async def ensure_local(registry: Registry, repository: str, digest: str) -> None:
    """Copy to this replica the blobs of the image it does not hold (a shared store
    holds everything)."""
    store = registry.store
    if store.shared:
        return
    for manifest in _tree(registry.state, repository, digest):
        for blob in _blobs(manifest):
            if store.stat(blob) is None:
                await fetch_to_disk(registry.replication, blob)


def push(
    state: MetadataState, store: BlobStore, event: pb.Event, remote: RemoteRegistry, target: str
) -> Outcome:
    """Copy the image of a tag push to `target` (blocking)."""
    started = time.monotonic()
    copied = 0
    try:
        for manifest in _tree(state, event.repository, event.digest):
            for blob in _blobs(manifest):
                if not remote.blob_exists(target, blob):
                    remote.push_blob(target, blob, _chunks(store, blob))
                    copied += 1
            reference = event.tag if manifest.digest == event.digest else manifest.digest
            remote.push_manifest(target, reference, manifest.media_type, manifest.body)
    except RemoteError as e:
        millis = int((time.monotonic() - started) * 1000)
        return Outcome(False, e.code, str(e)[:500], millis)
    millis = int((time.monotonic() - started) * 1000)
    return Outcome(True, 201, f"{event.tag} copied to {target} ({copied} blobs sent)", millis)


def _chunks(store: BlobStore, digest: str) -> Iterator[bytes]:
    size = store.stat(digest)
    if size is None:
        raise RemoteError(f"{digest} is not on this replica")
    yield from store.read(digest, 0, size)
