"""The trust service's operations on a GUN: publish, read, the keys it holds, delete.

Reads pass the read barrier like every registry read; writes go through Raft. The
timestamp and snapshot keys are generated here, sealed (keys.KeySeal) and replicated,
so whichever replica a client reaches can sign, and a lost replica loses no key.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from typing import Any

from consensus import trust as state
from proto import commands_pb2 as pb
from replica.errors import InvalidRole, MetadataNotFound, OldVersion, RegistryError
from replica.names import repository_of_gun
from replica.registry import Registry
from replica.trust import keys, metadata, validation

log = logging.getLogger("qreg.trust")

_ATTEMPTS = 3
# A timestamp is signed anew when a reader finds it this close to expiring (it lives
# 14 days): at most one Raft write per GUN a week, never a stale one served.
_REFRESH_BEFORE = datetime.timedelta(days=7)
SERVER_ROLES = (metadata.TIMESTAMP, metadata.SNAPSHOT)


def _now_ms() -> int:
    return int(time.time() * 1000)


class TrustService:
    def __init__(self, registry: Registry, seal: keys.KeySeal) -> None:
        self.registry = registry
        self.seal = seal

    # ---- reading ------------------------------------------------------------------

    def stored(self, gun: str) -> validation.Stored:
        def read(txn: Any) -> tuple[dict[str, bytes], dict[str, list[pb.PutTrustKey]]]:
            documents = state.documents(txn, gun)
            held = {role: state.keys(txn, gun, role) for role in SERVER_ROLES}
            return documents, held

        documents, held = self.registry.state.view(read)
        opened = {
            role: [self.seal.open(k.public, k.sealed_private) for k in records]
            for role, records in held.items()
        }
        return validation.Stored(documents, opened)

    async def document(self, gun: str, role: str, checksum: str = "", version: int = 0) -> bytes:
        """A role's metadata: current, or by its sha256, or by version."""
        metadata.check_role(role)
        await self.registry.fresh()
        view = self.registry.state.view
        if checksum:
            found = view(state.by_checksum, gun, role, checksum)
        elif version:
            found = view(state.version_of, gun, role, version)
        else:
            found = view(state.current_data, gun, role)
            if role == metadata.TIMESTAMP and found is not None:
                found = await self._fresh_timestamp(gun, found)
        if found is None:
            raise MetadataNotFound(detail={"gun": gun, "role": role})
        return found

    async def _fresh_timestamp(self, gun: str, current: bytes) -> bytes:
        expires = metadata.parse(metadata.TIMESTAMP, current).expires
        if expires - metadata.now() > _REFRESH_BEFORE:
            return current
        try:
            stored = self.stored(gun)
            root = metadata.parse(metadata.ROOT, stored.documents[metadata.ROOT])
            stamp, version = validation.sign_timestamp(
                stored.documents[metadata.SNAPSHOT],
                stored,
                metadata.root_roles(root)[metadata.TIMESTAMP],
                metadata.now(),
            )
            await self._propose(
                publish_trust=pb.PublishTrust(
                    gun=gun,
                    repository=repository_of_gun(gun),
                    expected_timestamp=stored.version(metadata.TIMESTAMP),
                    files=[pb.TrustFile(role=metadata.TIMESTAMP, version=version, data=stamp)],
                    at_ms=_now_ms(),
                )
            )
            return stamp
        except (RegistryError, KeyError) as e:
            # Another replica refreshed it first, or no quorum: the stored one still holds.
            log.info("timestamp of %s not refreshed: %s", gun, e)
            return self.registry.state.view(state.current_data, gun, metadata.TIMESTAMP) or current

    def changes(self, gun: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        return self.registry.state.view(state.changes, gun, after, limit)

    # ---- writing -------------------------------------------------------------------

    async def publish(
        self, gun: str, repository: str, uploads: dict[str, bytes], actor: str
    ) -> validation.Update:
        """Validate and store an update; a publish that raced another is checked again
        against what won (and then usually refused as not newer)."""
        for attempt in range(_ATTEMPTS):
            await self.registry.fresh()
            stored = self.stored(gun)
            update = await asyncio.to_thread(
                validation.validate, gun, uploads, stored, metadata.now()
            )
            try:
                await self._propose(
                    actor=actor,
                    publish_trust=pb.PublishTrust(
                        gun=gun,
                        repository=repository,
                        expected_timestamp=stored.version(metadata.TIMESTAMP),
                        files=[pb.TrustFile(role=r, version=v, data=d) for r, v, d in update.files],
                        signers=update.signers,
                        at_ms=_now_ms(),
                    ),
                )
            except OldVersion:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            log.info(
                "trust data published",
                extra={
                    "fields": {
                        "event": "trust_publish",
                        "gun": gun,
                        "user": actor,
                        "roles": [r for r, _, _ in update.files],
                        "signers": update.signers,
                    }
                },
            )
            return update
        raise AssertionError("unreachable")

    async def key(
        self, gun: str, repository: str, role: str, rotate: bool = False
    ) -> dict[str, Any]:
        """The public key the service signs `role` with for `gun`: the one the current
        root names if it holds it, else its newest; a new one if it holds none (or
        when asked to rotate)."""
        if role not in SERVER_ROLES:
            raise InvalidRole(f"the service holds only timestamp and snapshot keys, not {role!r}")
        await self.registry.fresh()
        if not rotate:
            found = self._key_in_use(gun, role)
            if found is not None:
                return found.json()
        public_key, sealed = self.seal.new_key()
        result = await self._propose(
            put_trust_key=pb.PutTrustKey(
                gun=gun,
                repository=repository,
                role=role,
                key_id=public_key.key_id,
                key_type=public_key.key_type,
                public=public_key.public,
                sealed_private=sealed,
                rotate=rotate,
            )
        )
        held = self.registry.state.view(state.keys, gun, role)
        chosen = next(k for k in held if k.key_id == result.message)
        return keys.from_public(chosen.key_type, chosen.public).json()

    def _key_in_use(self, gun: str, role: str) -> keys.PublicKey | None:
        held = [
            keys.from_public(k.key_type, k.public)
            for k in self.registry.state.view(state.keys, gun, role)
        ]
        if not held:
            return None
        root = self.registry.state.view(state.current_data, gun, metadata.ROOT)
        if root is not None:
            named = metadata.root_roles(metadata.parse(metadata.ROOT, root))[role].keys
            for key in held:
                if key.key_id in named:
                    return key
        return held[-1]

    async def delete(self, gun: str, repository: str, actor: str) -> None:
        await self._propose(
            actor=actor,
            delete_trust=pb.DeleteTrust(gun=gun, repository=repository, at_ms=_now_ms()),
        )

    async def _propose(self, actor: str = "", **command: Any) -> pb.Result:
        return await self.registry.propose_result(
            pb.Command(actor=actor, at_ms=_now_ms(), **command)
        )
