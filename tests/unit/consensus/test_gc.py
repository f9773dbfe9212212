"""Garbage collection's decisions in the state machine: a blob goes only if no manifest
references it, it is past its grace period, and nothing referenced or linked it since
the collection began; a manifest naming a collected blob is refused."""

from __future__ import annotations

import json

from consensus import gc
from proto import commands_pb2 as pb
from tests.unit.consensus.applied_log import AppliedLog, D

HOUR_MS = 3_600_000
NOW_MS = 1_000 * HOUR_MS


class Log(AppliedLog):
    """Applied commands, with the steps of pushes and collections the tests take."""

    def link(
        self, repo: str, name: str, at_ms: int = NOW_MS, seen: dict[str, int] | None = None
    ) -> pb.Result:
        """An upload's link: r0 committed the bytes after it applied every collection
        so far, unless `seen` says otherwise."""
        seen = {"r0": self.state.view(gc.collections)} if seen is None else seen
        return self.apply(
            link_blob=pb.LinkBlob(
                repository=repo, digest=D(name), size=1, replica_id="r0", at_ms=at_ms, seen=seen
            )
        )

    def manifest(self, repo: str, name: str, blobs: list[str], tag: str = "") -> pb.Result:
        body = json.dumps(
            {
                "schemaVersion": 2,
                "config": {"digest": D(blobs[0])},
                "layers": [{"digest": D(b)} for b in blobs[1:]],
            }
        ).encode()
        return self.apply(
            put_manifest=pb.PutManifest(
                repository=repo,
                digest=D(name),
                media_type="x",
                body=body,
                tag=tag,
                blob_digests=[D(b) for b in blobs],
            )
        )

    def begin(self) -> None:
        self.apply(begin_collection=pb.BeginCollection(at_ms=NOW_MS))

    def mark(self, now_ms: int = NOW_MS + HOUR_MS, grace_ms: int = HOUR_MS // 2):
        return self.state.view(gc.mark, now_ms, grace_ms)

    def collect(self, epoch: int, found: list[pb.CollectedBlob], at_ms: int = NOW_MS) -> None:
        self.apply(collect_blobs=pb.CollectBlobs(epoch=epoch, blobs=found, at_ms=at_ms))

    def collect_all(self) -> None:
        self.begin()
        self.collect(*self.mark())

    def exists(self, repo: str, name: str) -> bool:
        return self.state.blob_link(repo, D(name)) is not None


def test_only_unreferenced_blobs_past_their_grace_go(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.begin()
    for name in ("cfg", "shared", "only-lona", "fresh"):
        log.link("engineering/barca", name)
    log.link("engineering/barca", "fresh", at_ms=NOW_MS + HOUR_MS)  # linked a moment ago
    log.manifest("engineering/barca", "lona", ["cfg", "shared", "only-lona"], tag="lona")
    log.link("engineering/other", "shared")
    log.manifest("engineering/other", "other", ["shared"], tag="1")
    # lona is deleted (soft delete: the manifest and its tag leave the index).
    log.apply(delete_manifest=pb.DeleteManifest(repository="engineering/barca", digest=D("lona")))
    log.begin()  # every run opens its epoch, then marks
    epoch, found = log.mark()
    assert {b.digest for b in found} == {D("cfg"), D("only-lona")}  # not shared, not fresh
    log.collect(epoch, found)
    assert not log.exists("engineering/barca", "only-lona")
    assert not log.exists("engineering/barca", "cfg")
    assert log.exists("engineering/barca", "shared") and log.exists("engineering/other", "shared")
    assert log.exists("engineering/barca", "fresh")
    assert log.state.blob_holders(D("only-lona")) == []


def test_a_manifest_committed_after_the_collection_began_keeps_its_blobs(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.link("r", "layer", at_ms=1)
    log.begin()
    epoch, found = log.mark()
    assert [b.digest for b in found] == [D("layer")]
    # The push's manifest arrives between the mark and the collection.
    assert not log.manifest("r", "m", ["layer"], tag="1").error_code
    log.collect(epoch, found)
    assert log.exists("r", "layer")


def test_a_link_made_after_the_collection_began_keeps_the_blob(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.link("r", "layer", at_ms=1)
    log.begin()
    epoch, found = log.mark()
    log.link("s", "layer")  # uploaded again for another push, manifest still to come
    log.collect(epoch, found)
    assert log.exists("s", "layer") and log.exists("r", "layer")


def test_a_manifest_after_the_collection_is_refused_and_an_upload_brings_it_back(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.link("r", "layer", at_ms=1)
    log.begin()
    epoch, found = log.mark()
    log.collect(epoch, found)
    refused = log.manifest("r", "m", ["layer"], tag="1")
    assert refused.error_code == "MANIFEST_BLOB_UNKNOWN"
    log.link("r", "layer")  # the client uploads it again
    assert not log.manifest("r", "m", ["layer"], tag="1").error_code


def test_a_later_epoch_is_not_fooled_by_an_old_stamp(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.begin()
    log.link("r", "layer", at_ms=1)  # stamped with epoch 1, then left unreferenced
    log.begin()
    epoch, found = log.mark()
    assert epoch == 2 and [b.digest for b in found] == [D("layer")]
    log.collect(epoch, found)
    assert not log.exists("r", "layer")


def test_a_log_from_before_collections_replays_into_the_same_state(tmp_path) -> None:
    # Nothing is stamped or recorded until a collection ever began.
    log = Log(str(tmp_path / "a"))
    log.link("r", "layer")
    log.manifest("r", "m", ["layer"], tag="1")
    assert log.state.view(gc.epoch) == 0
    record = log.state.manifest("r", D("m"))
    assert record is not None
    # Manifests stored then are read from their body when a collection marks.
    log.begin()
    _, found = log.mark()
    assert found == []


def test_a_copy_committed_before_the_collection_was_applied_is_not_counted(tmp_path) -> None:
    # r0 read the counter (0) and committed its new copy of the layer while the
    # collection of the old one was on its way: r0 may delete that copy.
    log = Log(str(tmp_path))
    log.link("r", "layer", at_ms=1)
    log.collect_all()
    refused = log.link("r", "layer", seen={"r0": 0})
    assert refused.error_code == "BLOB_UPLOAD_INVALID"
    assert not log.exists("r", "layer")
    # Committed after it was applied: counted.
    assert not log.link("r", "layer", seen={"r0": 1}).error_code
    assert log.state.blob_holders(D("layer")) == ["r0"]


def test_a_link_adding_holders_drops_stale_copies_and_never_revives_a_blob(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.link("r", "layer", at_ms=1)
    log.collect_all()

    def add(replica: str, seen: int) -> pb.Result:
        return log.apply(
            link_blob=pb.LinkBlob(
                digest=D("layer"), size=1, replica_id=replica, seen={replica: seen}
            )
        )

    assert add("r1", 1).error_code == "BLOB_UNKNOWN"  # a peer's fetch of a collected blob
    assert log.state.blob_holders(D("layer")) == []
    log.link("r", "layer")
    assert not add("r1", 0).error_code  # a copy from before the collection: not counted
    assert not add("r2", 1).error_code
    assert log.state.blob_holders(D("layer")) == ["r0", "r2"]


def test_a_mount_needs_the_blob_to_exist(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.link("r", "layer", at_ms=1)
    mount = pb.LinkBlob(repository="s", digest=D("layer"), size=1, at_ms=NOW_MS)
    assert not log.apply(link_blob=mount).error_code
    assert log.state.blob_holders(D("layer")) == ["r0"]  # a mount adds no holder
    log.apply(unlink_blob=pb.UnlinkBlob(repository="s", digest=D("layer")))
    log.collect_all()
    assert log.apply(link_blob=mount).error_code == "BLOB_UNKNOWN"


def test_tombstones_are_forgotten_after_a_day(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.link("r", "old", at_ms=1)
    log.collect_all()
    assert log.state.view(gc.tombstone, D("old")) == (1, NOW_MS)
    log.link("r", "young", at_ms=1)
    log.begin()
    log.collect(*log.mark(now_ms=NOW_MS + 30 * HOUR_MS), at_ms=NOW_MS + 25 * HOUR_MS)
    assert log.state.view(gc.tombstone, D("old")) is None
    assert log.state.view(gc.tombstone, D("young")) == (2, NOW_MS + 25 * HOUR_MS)
    assert [d for d, _ in log.state.view(lambda txn: list(gc.tombstones(txn)))] == [D("young")]


def test_untagged_manifests_go_unless_tagged_or_named_by_an_index_since(tmp_path) -> None:
    from consensus import gc_manifests

    log = Log(str(tmp_path))
    log.link("r", "cfg")
    log.manifest("r", "kept", ["cfg"], tag="1")
    for name in ("old", "tagged-later", "child"):
        log.manifest("r", name, ["cfg"])  # by digest: untagged
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": D("child")}]}).encode()
    log.apply(
        put_manifest=pb.PutManifest(
            repository="r",
            digest=D("index"),
            media_type="x",
            body=index,
            tag="multi",
            manifest_digests=[D("child")],
            pushed_at_ms=NOW_MS,
        )
    )
    log.begin()
    epoch = log.state.view(gc.epoch)
    found = log.state.view(gc_manifests.untagged, NOW_MS + 1)
    assert found == {"r": sorted([D("old"), D("tagged-later")])}
    assert log.state.view(gc_manifests.untagged, 0) == {}  # none pushed before then
    # Between the plan and the collection, one of them is tagged.
    log.manifest("r", "tagged-later", ["cfg"], tag="2")
    result = log.apply(
        collect_manifests=pb.CollectManifests(epoch=epoch, repository="r", digests=found["r"])
    )
    assert result.message == "1"
    assert log.state.manifest("r", D("old")) is None
    assert log.state.manifest("r", D("tagged-later")) is not None
    assert log.state.manifest("r", D("child")) is not None
