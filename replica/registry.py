"""The registry's service layer: what handlers call, between them and storage.

Writes verify and store bytes first, then propose the metadata change through
Raft; reads come from the local state machine and blob store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from consensus import Manifest, MetadataState, NoQuorum, RaftNode
from proto import commands_pb2 as pb
from replica import manifests
from replica.blobstore import BlobStore
from replica.errors import (BlobUnknown, DigestInvalid, ManifestUnknown, NameUnknown,
                            Unavailable, from_code)
from replica.names import digest_of, is_tag
from replica.uploads import UploadSessions


@dataclass
class Registry:
    replica_id: str
    store: BlobStore
    uploads: UploadSessions
    state: MetadataState
    raft: RaftNode

    # ---- reads --------------------------------------------------------------------

    def blob_size(self, repository: str, digest: str) -> int:
        """Size of a blob the repository links and this replica holds."""
        size = self.state.blob_link(repository, digest)
        if size is None or self.store.stat(digest) is None:
            raise BlobUnknown(detail={"digest": digest})
        return size

    def manifest(self, repository: str, reference: str) -> Manifest:
        digest = self.state.resolve(repository, reference)
        found = self.state.manifest(repository, digest) if digest else None
        if found is None:
            if not self.state.repository_exists(repository):
                raise NameUnknown(detail={"name": repository})
            raise ManifestUnknown(detail={"reference": reference})
        return found

    def tags(self, repository: str, limit: int | None, last: str) -> list[str]:
        if not self.state.repository_exists(repository):
            raise NameUnknown(detail={"name": repository})
        return self.state.tags(repository, last, limit)

    def catalog(self, limit: int | None, last: str) -> list[str]:
        return self.state.repositories(last, limit)

    def referrers(self, repository: str, digest: str) -> list[pb.Descriptor]:
        return self.state.referrers(repository, digest)

    # ---- writes -----------------------------------------------------------------------

    async def link_blob(self, repository: str, digest: str, size: int) -> None:
        await self._propose(pb.Command(link_blob=pb.LinkBlob(
            repository=repository, digest=digest, size=size, replica_id=self.replica_id)))

    async def mount(self, repository: str, digest: str, source: str) -> bool:
        """Link a blob of `source` into `repository`; False if there is nothing to mount."""
        size = self.state.blob_link(source, digest)
        if size is None or self.store.stat(digest) is None:
            return False
        await self.link_blob(repository, digest, size)
        return True

    async def put_manifest(self, repository: str, reference: str, content_type: str,
                           body: bytes) -> pb.PutManifest:
        if is_tag(reference):
            digest = digest_of(body)
        else:
            digest = digest_of(body, reference.split(":", 1)[0])
            if digest != reference:
                raise DigestInvalid(detail={"expected": reference, "actual": digest})
        command = manifests.parse(repository, digest, content_type, body)
        if is_tag(reference):
            command.tag = reference
        command.pushed_at_ms = int(time.time() * 1000)
        await self._propose(pb.Command(put_manifest=command))
        return command

    async def delete_manifest(self, repository: str, reference: str) -> None:
        if is_tag(reference):
            command = pb.Command(delete_tag=pb.DeleteTag(repository=repository, tag=reference))
        else:
            command = pb.Command(delete_manifest=pb.DeleteManifest(
                repository=repository, digest=reference))
        if not self.state.repository_exists(repository):
            raise NameUnknown(detail={"name": repository})
        await self._propose(command)

    async def delete_blob(self, repository: str, digest: str) -> None:
        if not self.state.repository_exists(repository):
            raise NameUnknown(detail={"name": repository})
        await self._propose(pb.Command(unlink_blob=pb.UnlinkBlob(
            repository=repository, digest=digest)))

    async def _propose(self, command: pb.Command) -> None:
        try:
            result = await self.raft.propose(command)
        except NoQuorum as e:
            raise Unavailable(f"the cluster has no quorum: {e}",
                              headers={"Retry-After": "1"}) from None
        if result.error_code:
            raise from_code(result.error_code, result.message)
