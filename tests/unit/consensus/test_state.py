"""The state machine applies commands deterministically and idempotently."""

from __future__ import annotations

import hashlib

from consensus import MetadataState
from proto import commands_pb2 as pb


def D(s: str) -> str:
    return "sha256:" + hashlib.sha256(s.encode()).hexdigest()


def commands() -> list[pb.Command]:
    return [
        pb.Command(
            link_blob=pb.LinkBlob(repository="a/b", digest=D("cfg"), size=3, replica_id="r0")
        ),
        pb.Command(
            link_blob=pb.LinkBlob(repository="a/b", digest=D("l1"), size=4, replica_id="r0")
        ),
        pb.Command(
            put_manifest=pb.PutManifest(
                repository="a/b",
                digest=D("m"),
                media_type="x",
                body=b"{}",
                tag="v1",
                blob_digests=[D("cfg"), D("l1")],
            )
        ),
        pb.Command(
            put_manifest=pb.PutManifest(
                repository="a/b", digest=D("m"), media_type="x", body=b"{}", tag="v2"
            )
        ),
        pb.Command(
            put_manifest=pb.PutManifest(
                repository="a/b",
                digest=D("sig"),
                media_type="x",
                body=b"{}",
                subject_digest=D("m"),
                referrer=pb.Descriptor(digest=D("sig"), artifact_type="s"),
            )
        ),
        pb.Command(delete_tag=pb.DeleteTag(repository="a/b", tag="v2")),
    ]


def apply_all(state: MetadataState, start: int = 1) -> list[pb.Result]:
    return [
        pb.Result.FromString(state.apply(start + i, c.SerializeToString()))
        for i, c in enumerate(commands())
    ]


def test_apply_and_query(tmp_path) -> None:
    state = MetadataState(str(tmp_path / "s"))
    assert all(r.error_code == "" for r in apply_all(state))
    assert state.tags("a/b") == ["v1"]
    assert state.resolve("a/b", "v1") == D("m")
    assert state.blob_link("a/b", D("l1")) == 4
    assert [d.digest for d in state.referrers("a/b", D("m"))] == [D("sig")]
    assert state.repositories() == ["a/b"]
    assert state.applied_index() == len(commands())


def test_manifest_with_unlinked_blob_is_refused(tmp_path) -> None:
    state = MetadataState(str(tmp_path / "s"))
    cmd = pb.Command(
        put_manifest=pb.PutManifest(repository="r", digest=D("m"), blob_digests=[D("x")])
    )
    result = pb.Result.FromString(state.apply(1, cmd.SerializeToString()))
    assert result.error_code == "MANIFEST_BLOB_UNKNOWN"
    assert state.manifest("r", D("m")) is None


def test_replay_is_idempotent_and_deterministic(tmp_path) -> None:
    one, two = MetadataState(str(tmp_path / "one")), MetadataState(str(tmp_path / "two"))
    apply_all(one)
    apply_all(two)
    apply_all(two)  # a journal replay after restart: every entry is at or below applied
    dump = lambda s: list(s._env.begin().cursor().iternext())  # noqa: E731
    assert dump(one) == dump(two)


def test_delete_manifest_removes_its_tags_and_referrer_entry(tmp_path) -> None:
    state = MetadataState(str(tmp_path / "s"))
    apply_all(state)
    n = len(commands())
    state.apply(
        n + 1,
        pb.Command(
            delete_manifest=pb.DeleteManifest(repository="a/b", digest=D("sig"))
        ).SerializeToString(),
    )
    assert state.referrers("a/b", D("m")) == []
    state.apply(
        n + 2,
        pb.Command(
            delete_manifest=pb.DeleteManifest(repository="a/b", digest=D("m"))
        ).SerializeToString(),
    )
    assert state.tags("a/b") == [] and state.manifest("a/b", D("m")) is None


def test_names_sharing_a_prefix_stay_apart(tmp_path) -> None:
    state = MetadataState(str(tmp_path / "s"))
    for i, repo in enumerate(["a", "a/b", "ab"], start=1):
        state.apply(
            i,
            pb.Command(
                put_manifest=pb.PutManifest(
                    repository=repo, digest=D(repo), tag="t" + repo.replace("/", "")
                )
            ).SerializeToString(),
        )
    assert state.tags("a") == ["ta"]
    assert state.repositories() == ["a", "a/b", "ab"]
    assert state.repositories(after="a", limit=1) == ["a/b"]
