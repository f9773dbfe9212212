"""Garbage collection of untagged manifests (an option, off by default as in DTR): a
manifest no tag and no index of its repository references, pushed longer ago than a
number of days, goes before the collection marks blobs, so its blobs can go in the
same run.

The race is the one gc.py settles for blobs, settled the same way: from the first
collection on, a manifest PUT stamps the manifest it tags and the children an index
names with the epoch (key gm), and CollectManifests(E) keeps a manifest stamped at E
or later, or tagged when it is applied (content.py applies it).
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict

import lmdb

from consensus import gc
from consensus.accounts import key, scan
from proto import commands_pb2 as pb

_SEP = b"\0"


def note_reference(txn: lmdb.Transaction, repository: str, digest: str) -> None:
    current = gc.epoch(txn)
    if current:
        txn.put(key(b"gm", repository, digest), struct.pack(">Q", current))


def referenced_since(txn: lmdb.Transaction, repository: str, digest: str, epoch: int) -> bool:
    stamp = txn.get(key(b"gm", repository, digest))
    return stamp is not None and struct.unpack(">Q", bytes(stamp))[0] >= epoch


def forget(txn: lmdb.Transaction, repository: str, digest: str) -> None:
    txn.delete(key(b"gm", repository, digest))


def _children(record: pb.ManifestRecord) -> list[str]:
    try:
        doc = json.loads(record.body)
    except ValueError:
        return []
    found = []
    for child in doc.get("manifests") or [] if isinstance(doc, dict) else []:
        if isinstance(child, dict) and isinstance(child.get("digest"), str):
            found.append(child["digest"])
    return found


def untagged(txn: lmdb.Transaction, pushed_before_ms: int) -> dict[str, list[str]]:
    """Per repository, the manifests no tag and no index of it references and that do
    not refer to a subject still there (a signature stays with its image), pushed
    before `pushed_before_ms`. Reads every tag and manifest: off the event loop."""
    tagged: set[tuple[str, str]] = set()
    prefix = b"t" + _SEP
    for k, v in scan(txn, prefix):
        repository = k[len(prefix) :].decode().rpartition("\0")[0]
        tagged.add((repository, v.decode()))
    manifests: dict[tuple[str, str], pb.ManifestRecord] = {}
    children: set[tuple[str, str]] = set()
    prefix = b"M" + _SEP
    for k, raw in scan(txn, prefix):
        repository, _, digest = k[len(prefix) :].decode().rpartition("\0")
        record = pb.ManifestRecord.FromString(raw)
        manifests[(repository, digest)] = record
        children.update((repository, child) for child in _children(record))
    found: dict[str, list[str]] = defaultdict(list)
    for (repository, digest), record in sorted(manifests.items()):
        if (repository, digest) in tagged or (repository, digest) in children:
            continue
        if record.subject_digest and (repository, record.subject_digest) in manifests:
            continue
        if record.pushed_at_ms >= pushed_before_ms:
            continue
        found[repository].append(digest)
    return dict(found)
