"""Content trust's state: a publish applies only over the timestamp it was checked
against (two racing publishes: one wins), versions, history, keys, the change feed,
and a deleted repository taking its trust data along."""

from __future__ import annotations

import hashlib

import pytest

from consensus import accounts, trust
from proto import commands_pb2 as pb
from tests.unit.consensus.applied_log import AppliedLog

GUN = "registry.example:5000/lib/app"


@pytest.fixture
def log(tmp_path) -> AppliedLog:
    return AppliedLog(str(tmp_path / "state"), at_ms=1000)


def publish(log: AppliedLog, expected: int, **versions: int) -> pb.Result:
    files = [
        pb.TrustFile(role=role, version=v, data=f"{role} {v}".encode())
        for role, v in versions.items()
    ]
    return log.apply(
        publish_trust=pb.PublishTrust(
            gun=GUN, repository="lib/app", expected_timestamp=expected, files=files, at_ms=5
        )
    )


def test_of_two_publishes_checked_against_one_state_only_the_first_applies(log) -> None:
    assert publish(log, 0, root=1, targets=1, snapshot=1, timestamp=1).error_code == ""
    assert publish(log, 1, targets=2, snapshot=2, timestamp=2).error_code == ""
    loser = publish(log, 1, targets=2, snapshot=2, timestamp=2)
    assert loser.error_code == "VERSION"
    assert log.state.view(trust.current, GUN, "targets").version == 2
    assert log.state.view(trust.version_of, GUN, "targets", 2) == b"targets 2"
    sha = hashlib.sha256(b"targets 1").hexdigest()
    assert log.state.view(trust.by_checksum, GUN, "targets", sha) == b"targets 1"
    assert log.state.view(trust.guns, "lib/app") == [GUN]
    feed = log.state.view(trust.changes, GUN, 0, 10)
    assert [c["version"] for c in feed] == [1, 2]


def test_old_versions_beyond_the_kept_ones_are_forgotten_but_every_root_stays(log) -> None:
    publish(log, 0, root=1, targets=1, snapshot=1, timestamp=1)
    for n in range(2, trust.KEPT_VERSIONS + 5):
        assert publish(log, n - 1, root=n, targets=n, snapshot=n, timestamp=n).error_code == ""
    assert log.state.view(trust.version_of, GUN, "targets", 1) is None
    assert log.state.view(trust.version_of, GUN, "targets", 5) is not None
    assert log.state.view(trust.version_of, GUN, "root", 1) == b"root 1"


def test_the_first_key_made_for_a_role_is_the_one_kept_unless_rotating(log) -> None:
    def put(key_id: str, rotate: bool = False) -> pb.Result:
        return log.apply(
            put_trust_key=pb.PutTrustKey(
                gun=GUN, repository="lib/app", role="timestamp", key_id=key_id, rotate=rotate
            )
        )

    assert put("first").message == "first"
    assert put("second").message == "first"  # two replicas raced: the first one counts
    assert put("third", rotate=True).message == "third"
    held = log.state.view(trust.keys, GUN, "timestamp")
    assert [k.key_id for k in held] == ["first", "third"]
    audit = log.state.view(accounts.audit_log, 0, 10)
    assert all("sealedPrivate" not in e["fields"] for e in audit)


def test_deleting_the_repository_deletes_its_trust_data(log) -> None:
    publish(log, 0, root=1, targets=1, snapshot=1, timestamp=1)
    log.apply(delete_repository=pb.DeleteRepository(repository="lib/app"))
    assert log.state.view(trust.roles, GUN) == {}
    assert log.state.view(trust.guns, "lib/app") == []
    assert log.state.view(trust.changes, None, 0, 10)[-1]["category"] == "deletion"


def test_one_repository_holds_trust_data_under_a_bounded_number_of_names(log) -> None:
    for n in range(trust.MAX_GUNS_PER_REPOSITORY):
        gun = f"host{n}.example/lib/app"
        result = log.apply(
            publish_trust=pb.PublishTrust(gun=gun, repository="lib/app", files=[], at_ms=1)
        )
        assert result.error_code == ""
    extra = log.apply(
        publish_trust=pb.PublishTrust(gun="one.more/lib/app", repository="lib/app", at_ms=1)
    )
    assert extra.error_code == "INVALID_UPDATE" and "16 names" in extra.message


def test_rotations_keep_only_the_newest_keys(log) -> None:
    for n in range(trust.KEPT_KEYS + 5):
        log.apply(
            put_trust_key=pb.PutTrustKey(
                gun=GUN, repository="lib/app", role="snapshot", key_id=f"k{n}", rotate=True
            )
        )
    held = [k.key_id for k in log.state.view(trust.keys, GUN, "snapshot")]
    assert held == [f"k{n}" for n in range(5, trust.KEPT_KEYS + 5)]
