"""Repository policies in the state: immutable tags, retention rules, namespace quotas,
and which tags retention prunes (content.py applies the pruning in log order, so a tag
pushed again after retention chose it is not pruned).

Key layout:

    rp\\0<repo>        -> RepositoryPolicy
    rq\\0<namespace>   -> quota in bytes, 8 bytes big-endian
"""

from __future__ import annotations

import fnmatch
import struct
from typing import Any

import lmdb

from consensus.accounts import key, scan
from proto import commands_pb2 as pb

_SEP = b"\0"


def _fail(code: str, message: str) -> pb.Result:
    return pb.Result(error_code=code, message=message)


def policy(txn: lmdb.Transaction, repository: str) -> pb.RepositoryPolicy:
    raw = txn.get(key(b"rp", repository))
    if raw is None:
        return pb.RepositoryPolicy(repository=repository)
    return pb.RepositoryPolicy.FromString(bytes(raw))


def policies(txn: lmdb.Transaction) -> list[pb.RepositoryPolicy]:
    return [pb.RepositoryPolicy.FromString(v) for _, v in scan(txn, b"rp" + _SEP)]


def quota(txn: lmdb.Transaction, namespace: str) -> int:
    raw = txn.get(key(b"rq", namespace))
    return int(struct.unpack(">Q", bytes(raw))[0]) if raw else 0


def quotas(txn: lmdb.Transaction) -> dict[str, int]:
    prefix = b"rq" + _SEP
    return {k[len(prefix) :].decode(): int(struct.unpack(">Q", v)[0]) for k, v in scan(txn, prefix)}


def covers(rules: pb.RepositoryPolicy, tag: str) -> bool:
    """Whether immutability covers the tag."""
    if not rules.immutable_tags:
        return False
    return not rules.immutable_pattern or fnmatch.fnmatchcase(tag, rules.immutable_pattern)


def immutable_tag(txn: lmdb.Transaction, repository: str, tag: str) -> pb.Result | None:
    """A refusal if the repository's immutability covers an existing tag."""
    rules = policy(txn, repository)
    if covers(rules, tag) and txn.get(key(b"t", repository, tag)) is not None:
        return _fail(
            "DENIED",
            f"tag {tag} of {repository} is immutable: it cannot be pushed again or deleted "
            "until an administrator of the repository lifts immutability",
        )
    return None


def _set_policy(txn: lmdb.Transaction, c: pb.SetRepositoryPolicy) -> pb.Result:
    if txn.get(key(b"r", c.policy.repository)) is None:
        return _fail("NAME_UNKNOWN", f"no repository {c.policy.repository}")
    empty = pb.RepositoryPolicy(repository=c.policy.repository)
    if c.policy == empty:
        txn.delete(key(b"rp", c.policy.repository))
    else:
        txn.put(key(b"rp", c.policy.repository), c.policy.SerializeToString())
    return pb.Result()


def _set_quota(txn: lmdb.Transaction, c: pb.SetNamespaceQuota) -> pb.Result:
    if txn.get(key(b"u", c.namespace)) is None:
        return _fail("NOT_FOUND", f"no account or organization named {c.namespace}")
    if c.bytes:
        txn.put(key(b"rq", c.namespace), struct.pack(">Q", c.bytes))
    else:
        txn.delete(key(b"rq", c.namespace))
    return pb.Result()


# Kept in the audit log (with account changes): who set a policy, what retention pruned.
AUDITED = ("set_repository_policy", "set_namespace_quota", "prune_tags")

APPLY: dict[str, Any] = {
    "set_repository_policy": _set_policy,
    "set_namespace_quota": _set_quota,
}


def retention_plan(txn: lmdb.Transaction, repository: str, now_ms: int) -> list[pb.PrunedTag]:
    """The tags the repository's retention rules prune now: of the tags they consider
    (prune_pattern) and may prune (not keep_pattern, not immutable), those beyond the
    newest `keep_newest` and those pushed more than `max_age_days` ago. A tag's age is
    its manifest's push time."""
    rules = policy(txn, repository)
    if not rules.keep_newest and not rules.max_age_days:
        return []
    prefix = key(b"t", repository) + _SEP
    candidates: list[tuple[int, str, str]] = []  # (pushed ms, tag, digest)
    for k, v in scan(txn, prefix):
        tag, digest = k[len(prefix) :].decode(), v.decode()
        if rules.prune_pattern and not fnmatch.fnmatchcase(tag, rules.prune_pattern):
            continue
        raw = txn.get(key(b"M", repository, digest))
        pushed = pb.ManifestRecord.FromString(bytes(raw)).pushed_at_ms if raw else 0
        candidates.append((pushed, tag, digest))
    candidates.sort(key=lambda c: (-c[0], c[1]))  # newest first
    doomed = []
    for rank, (pushed, tag, digest) in enumerate(candidates):
        too_many = bool(rules.keep_newest) and rank >= rules.keep_newest
        too_old = bool(rules.max_age_days) and pushed < now_ms - rules.max_age_days * 86_400_000
        kept = rules.keep_pattern and fnmatch.fnmatchcase(tag, rules.keep_pattern)
        if (too_many or too_old) and not kept and not covers(rules, tag):
            doomed.append(pb.PrunedTag(tag=tag, digest=digest))
    return sorted(doomed, key=lambda t: t.tag)
