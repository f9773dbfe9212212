"""Namespace storage quotas, checked before a manifest is proposed: a push that would
take its namespace over its quota is refused with DENIED, saying the quota and the
usage. Usage is the distinct blobs the namespace's manifests reference
(consensus/usage.py), recounted at most every few seconds and added to as pushes
pass; two pushes racing may overshoot the quota by one image, which the next push
then finds."""

from __future__ import annotations

import asyncio
import time

from consensus import MetadataState, policies, usage
from proto import commands_pb2 as pb
from replica.errors import Denied

RECOUNT_EVERY_S = 5.0


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class QuotaCheck:
    def __init__(self, state: MetadataState) -> None:
        self._state = state
        self._counted: dict[str, tuple[float, int, set[str]]] = {}  # namespace -> usage

    async def check(self, command: pb.PutManifest) -> None:
        namespace = command.repository.split("/", 1)[0]
        limit = self._state.view(policies.quota, namespace)
        if not limit:
            return
        counted = self._counted.get(namespace)
        if counted is None or time.monotonic() - counted[0] > RECOUNT_EVERY_S:
            used, blobs = await asyncio.to_thread(
                self._state.view, usage.namespace_bytes, namespace
            )
            counted = (time.monotonic(), used, blobs)
        at, used, blobs = counted
        new = [d for d in set(command.blob_digests) if d not in blobs]
        adds = sum(self._state.blob_size(d) or 0 for d in new)
        if adds and used + adds > limit:
            raise Denied(
                f"namespace {namespace} is over its storage quota of {human(limit)}: it uses "
                f"{human(used)} and this push adds {human(adds)}",
                detail={"namespace": namespace, "quota": limit, "used": used, "adds": adds},
            )
        self._counted[namespace] = (at, used + adds, blobs | set(new))
