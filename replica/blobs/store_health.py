"""Whether this replica reaches its blob store: for /health, `qreg status` and metrics.

A local store is this replica's own disk (a full one is answered per request, 507).
A shared object store can be out of reach of one replica or of all: it is asked
every few seconds (one HeadBucket), so health checks cost it nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from replica.blobs.s3store import S3BlobStore
from replica.blobs.store import BlobStore
from replica.errors import RegistryError
from replica.metrics import Metrics

log = logging.getLogger("qreg.blobs")

CHECK_EVERY_S = 5.0


class StoreHealth:
    def __init__(self, store: BlobStore, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self.reachable = True
        self.error = ""
        self.since = time.time()  # when `reachable` last changed

    @property
    def backend(self) -> str:
        return "s3" if isinstance(self._store, S3BlobStore) else "local"

    async def check_once(self) -> None:
        if not isinstance(self._store, S3BlobStore):
            return
        try:
            await asyncio.to_thread(self._store.check)
            reachable, error = True, ""
        except RegistryError as e:
            reachable, error = False, e.message
        if reachable != self.reachable:
            self.since = time.time()
            if reachable:
                log.info("the object store answers again")
            else:
                log.error("the object store is unreachable: %s", error)
        self.reachable, self.error = reachable, error
        self._metrics.blob_store_reachable.set(1 if reachable else 0)

    async def run(self) -> None:
        while isinstance(self._store, S3BlobStore):
            await self.check_once()
            await asyncio.sleep(CHECK_EVERY_S)

    def health(self) -> dict[str, Any]:
        """What /health says of the store to anyone."""
        found: dict[str, Any] = {"backend": self.backend, "reachable": self.reachable}
        if not self.reachable:
            found["unreachable_since"] = self.since
        return found

    def detail(self) -> dict[str, Any]:
        """What only operators see: where the store is and why it fails."""
        found: dict[str, Any] = {}
        if isinstance(self._store, S3BlobStore):
            settings = self._store.settings
            found.update(endpoint=settings.endpoint, bucket=settings.bucket)
            found["redirect"] = self._store.redirect_s > 0
        if self.error:
            found["error"] = self.error
        return found
