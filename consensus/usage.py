"""Storage used, read off the state: per repository the distinct blobs its manifests
reference (a layer shared by two of its images counted once), per namespace the
distinct blobs of its repositories, and the cluster's total (every blob recorded,
referenced or not yet collected). A layer shared between repositories counts in
each (attributed) and once in the total; `exclusive` is what only that repository
uses (what deleting it would free). Reads every manifest: run it off the event loop."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import lmdb

from consensus.accounts import scan
from consensus.gc import references
from proto import commands_pb2 as pb

_SEP = b"\0"


@dataclass
class Usage:
    total_bytes: int = 0
    total_blobs: int = 0
    repositories: dict[str, int] = field(default_factory=dict)  # bytes each uses
    exclusive: dict[str, int] = field(default_factory=dict)  # bytes only it uses
    namespaces: dict[str, int] = field(default_factory=dict)


def usage(txn: lmdb.Transaction) -> Usage:
    sizes: dict[str, int] = {}
    prefix = b"b" + _SEP
    for k, raw in scan(txn, prefix):
        sizes[k[len(prefix) :].decode()] = pb.BlobRecord.FromString(raw).size
    used_by: dict[str, set[str]] = defaultdict(set)  # repository -> blobs
    prefix = b"M" + _SEP
    for k, raw in scan(txn, prefix):
        repository = k[len(prefix) :].decode().rpartition("\0")[0]
        used_by[repository].update(references(pb.ManifestRecord.FromString(raw)))
    users: dict[str, int] = defaultdict(int)  # blob -> repositories using it
    for blobs in used_by.values():
        for digest in blobs:
            users[digest] += 1
    found = Usage(total_bytes=sum(sizes.values()), total_blobs=len(sizes))
    by_namespace: dict[str, set[str]] = defaultdict(set)
    for repository, blobs in sorted(used_by.items()):
        known = [d for d in blobs if d in sizes]
        found.repositories[repository] = sum(sizes[d] for d in known)
        found.exclusive[repository] = sum(sizes[d] for d in known if users[d] == 1)
        by_namespace[repository.split("/", 1)[0]].update(known)
    found.namespaces = {ns: sum(sizes[d] for d in blobs) for ns, blobs in by_namespace.items()}
    return found


def namespace_bytes(txn: lmdb.Transaction, namespace: str) -> tuple[int, set[str]]:
    """(bytes, blobs) the namespace's manifests use: what a quota counts."""
    sizes: dict[str, int] = {}
    blobs: set[str] = set()
    prefix = b"M" + _SEP + namespace.encode() + b"/"
    for _, raw in scan(txn, prefix):
        blobs.update(references(pb.ManifestRecord.FromString(raw)))
    for digest in blobs:
        record = txn.get(b"b" + _SEP + digest.encode())
        if record is not None:
            sizes[digest] = pb.BlobRecord.FromString(bytes(record)).size
    return sum(sizes.values()), set(sizes)
