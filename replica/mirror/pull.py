"""Pull mirroring: a repository here follows a repository on another registry.

The replica holding the mirror's lease (the same lease as a webhook's:
replica/webhooks/deliverer.py) lists the other repository's tags every interval and
copies in each tag matching the pattern whose digest differs from the one here. Each
tag copied, or failed, is an entry of the mirror's log. Tags deleted there stay here.
"""

from __future__ import annotations

import fnmatch
import time

from proto import commands_pb2 as pb
from replica.mirror.importer import Importer
from replica.mirror.remote import RemoteError, remote_of

PULL_MIRROR = "pull_mirror"
DEFAULT_INTERVAL_S = 300
MIN_INTERVAL_S = 10


def interval_s(hook: pb.Webhook) -> float:
    return float(max(MIN_INTERVAL_S, hook.interval_s or DEFAULT_INTERVAL_S))


async def poll(importer: Importer, hook: pb.Webhook, password: str, me: str) -> list[pb.Delivery]:
    """One look at the source: the log entries of the tags copied in (or not), or one
    entry saying why the source could not be read."""
    repository = hook.scope
    state = importer.registry.state
    records: list[pb.Delivery] = []
    started = time.monotonic()
    try:
        remote, source = remote_of(hook, password)
    except RemoteError as e:
        return [_entry(records, "", started, me, *_failure(e))]
    with remote:
        try:
            tags = await importer.call(remote.tags, source)
        except Exception as e:  # unreachable, refused, or its tags unreadable
            return [_entry(records, "", started, me, *_failure(e))]
        for tag in sorted(t for t in tags if fnmatch.fnmatchcase(t, hook.tag_pattern or "*")):
            started = time.monotonic()
            try:
                theirs = await importer.call(remote.manifest_digest, source, tag)
                if theirs is None or theirs == state.resolve(repository, tag):
                    continue
                digest = await importer.image(remote, source, tag, repository, tag)
                outcome = (True, 201, f"{tag} copied in as {digest}")
            except Exception as e:  # the source, or the cluster (quota, no quorum), refused
                ok, code, excerpt = _failure(e)
                outcome = (ok, code, f"{tag}: {excerpt}")
            records.append(_entry(records, tag, started, me, *outcome))
    return records


def _failure(e: Exception) -> tuple[bool, int, str]:
    if isinstance(e, RemoteError):
        return False, e.code, str(e)
    return False, 0, f"{type(e).__name__}: {e}"


def _entry(
    records: list[pb.Delivery], tag: str, started: float, me: str, ok: bool, code: int, excerpt: str
) -> pb.Delivery:
    now_ms = int(time.time() * 1000)
    return pb.Delivery(
        event=now_ms * 1000 + len(records),  # the log's order: when
        status="delivered" if ok else "failed",
        code=code,
        attempts=1,
        at_ms=now_ms,
        replica_id=me,
        excerpt=excerpt[:500],
        millis=int((time.monotonic() - started) * 1000),
        tag=tag,
    )
