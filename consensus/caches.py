"""Geographic caches in the replicated state, and each user's preferred cache.

Key layout (same LMDB database as state.py, ``\\0`` between fields):

    C\\0<name>    -> PutCache (a registered cache node)
    P\\0<user>    -> the name of the user's preferred cache

Changes are recorded in the audit log with account changes (state.py does it for
every command in APPLY here and in accounts.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import lmdb

from consensus.accounts import _fail, _scan, account, key
from proto import commands_pb2 as pb

MAX_CHAIN = 4  # hops from a cache to the cluster, at most
_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(?::\d+)?/?")


def cache(txn: lmdb.Transaction, name: str) -> pb.PutCache | None:
    raw = txn.get(key(b"C", name))
    return pb.PutCache.FromString(bytes(raw)) if raw else None


def caches(txn: lmdb.Transaction) -> list[pb.PutCache]:
    return [pb.PutCache.FromString(v) for _, v in _scan(txn, key(b"C", ""))]


def preference(txn: lmdb.Transaction, user: str) -> pb.PutCache | None:
    """The cache a user pulls blobs from, if they chose one that still exists."""
    raw = txn.get(key(b"P", user))
    return cache(txn, bytes(raw).decode()) if raw else None


def chain(txn: lmdb.Transaction, name: str) -> list[str]:
    """The caches a request goes through from `name` up to the cluster."""
    hops: list[str] = []
    while name and name not in hops and len(hops) <= MAX_CHAIN:
        hops.append(name)
        found = cache(txn, name)
        name = found.upstream if found else ""
    return hops


def _put_cache(txn: lmdb.Transaction, c: pb.PutCache) -> pb.Result:
    if cache(txn, c.name) is not None and c.create_only:
        return _fail("ALREADY_EXISTS", f"a cache named {c.name} exists")
    if not _URL.fullmatch(c.url):
        return _fail("INVALID_INPUT", f"a cache URL is http(s)://host[:port] (got {c.url!r})")
    if c.upstream:
        if c.upstream == c.name or cache(txn, c.upstream) is None:
            return _fail("INVALID_INPUT", f"no other cache named {c.upstream} to use upstream")
        hops = chain(txn, c.upstream)
        if c.name in hops or len(hops) >= MAX_CHAIN:
            return _fail(
                "INVALID_INPUT", f"a chain of caches is at most {MAX_CHAIN} hops, without loops"
            )
    txn.put(
        key(b"C", c.name),
        pb.PutCache(
            name=c.name, url=c.url.rstrip("/"), region=c.region, upstream=c.upstream
        ).SerializeToString(),
    )
    return pb.Result()


def _delete_cache(txn: lmdb.Transaction, c: pb.DeleteCache) -> pb.Result:
    if cache(txn, c.name) is None:
        return _fail("NOT_FOUND", f"no cache named {c.name}")
    if any(other.upstream == c.name for other in caches(txn)):
        return _fail("INVALID_INPUT", f"other caches use {c.name} upstream; remove them first")
    txn.delete(key(b"C", c.name))  # preferences naming it fall back to the cluster
    return pb.Result()


def _set_preference(txn: lmdb.Transaction, c: pb.SetCachePreference) -> pb.Result:
    user = account(txn, c.user)
    if user is None or user.is_org:
        return _fail("NOT_FOUND", f"no user named {c.user}")
    if not c.cache:
        txn.delete(key(b"P", c.user))
        return pb.Result()
    if cache(txn, c.cache) is None:
        return _fail("NOT_FOUND", f"no cache named {c.cache}")
    txn.put(key(b"P", c.user), c.cache.encode())
    return pb.Result()


APPLY: dict[str, Callable[[lmdb.Transaction, object], pb.Result]] = {
    "put_cache": _put_cache,  # type: ignore[dict-item]
    "delete_cache": _delete_cache,  # type: ignore[dict-item]
    "set_cache_preference": _set_preference,  # type: ignore[dict-item]
}
