"""Events made at apply time from commands: ids, filters, cursors, retention."""

from __future__ import annotations

import pytest

from consensus import events
from proto import commands_pb2 as pb
from tests.unit.consensus.test_accounts import Cluster


def _push(c: Cluster, repo: str, tag: str, at_ms: int, digest: str = "sha256:" + "a" * 64) -> None:
    # A manifest push that applies: its blobs and children lists are empty.
    c.ok(
        actor="ci",
        at_ms=at_ms,
        put_manifest=pb.PutManifest(
            repository=repo, digest=digest, media_type="application/vnd.oci.image.manifest.v1+json",
            body=b"{}", tag=tag, pushed_at_ms=at_ms, pushed_by="orca",
        ),
    )  # fmt: skip


@pytest.fixture
def cluster(tmp_path) -> Cluster:
    return Cluster(str(tmp_path / "state"))


def test_commands_make_events_with_ids_in_log_order(cluster: Cluster) -> None:
    _push(cluster, "lib/app", "1", 1000)
    cluster.ok(actor="gordon", at_ms=2000, delete_tag=pb.DeleteTag(repository="lib/app", tag="1"))
    refused = cluster.apply(at_ms=3000, delete_tag=pb.DeleteTag(repository="lib/app", tag="9"))
    assert refused.error_code  # a refused command makes no event
    found, more = cluster.state.view(events.events)
    assert [(e.type, e.tag, e.actor, e.at_ms) for e in found] == [
        ("push", "1", "orca", 1000),
        ("tag_delete", "1", "gordon", 2000),
    ]
    assert found[0].id < found[1].id and more == 0
    assert cluster.state.view(events.last_id) == found[1].id
    event = events.event_json(found[0])
    assert event["media_type"].endswith("manifest.v1+json") and event["detail"] == {}


def test_filters_and_cursors(cluster: Cluster) -> None:
    for n in range(5):
        _push(cluster, f"ns{n % 2}/app", str(n), 1000 + n)
    page, after = cluster.state.view(events.events, 0, 2)
    assert [e.tag for e in page] == ["0", "1"] and after == page[-1].id
    page, after = cluster.state.view(events.events, after, 10)
    assert [e.tag for e in page] == ["2", "3", "4"] and after == 0
    ns1, _ = cluster.state.view(events.events, 0, 10, "ns1/")
    assert [e.tag for e in ns1] == ["1", "3"]
    timed, _ = cluster.state.view(events.events, 0, 10, "", frozenset({"push"}), 1002, 1004)
    assert [e.tag for e in timed] == ["2", "3"]
    none, _ = cluster.state.view(events.events, 0, 10, "", frozenset({"scan"}))
    assert none == []
    newest = cluster.state.view(events.latest, 2, "ns0/")
    assert [e.tag for e in newest] == ["4", "2"]
    hidden = cluster.state.view(events.latest, 10, "", frozenset(), lambda txn, r: r != "ns0/app")
    assert [e.tag for e in hidden] == ["3", "1"]


def test_retention_by_count_and_age(cluster: Cluster) -> None:
    cluster.ok(set_event_retention=pb.SetEventRetention(max_events=3, days=1))
    for n in range(5):
        _push(cluster, "lib/app", str(n), 1000 + n)
    found, _ = cluster.state.view(events.events)
    assert [e.tag for e in found] == ["2", "3", "4"]
    _push(cluster, "lib/app", "late", 1000 + 2 * 86_400_000)  # the others are over a day old
    found, _ = cluster.state.view(events.events)
    assert [e.tag for e in found] == ["late"]


def test_a_recorded_refusal_is_an_event(cluster: Cluster) -> None:
    refusal = pb.Event(type="refusal", repository="lib/app", tag="1", actor="moby",
                       detail='{"reason": "unsigned"}')  # fmt: skip
    cluster.ok(at_ms=5, record_event=pb.RecordEvent(event=refusal))
    bad = pb.RecordEvent(event=pb.Event(type="whatever"))
    assert cluster.apply(record_event=bad).error_code == "INVALID_INPUT"
    found, _ = cluster.state.view(events.events)
    assert [(e.type, e.at_ms) for e in found] == [("refusal", 5)]
