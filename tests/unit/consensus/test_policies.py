"""Repository policies in the state machine: immutable tags, retention's choice of
tags and its pruning in log order, namespace quotas, and their audit entries."""

from __future__ import annotations

import json

from consensus import accounts, policies
from proto import commands_pb2 as pb
from tests.unit.consensus.applied_log import AppliedLog, D

DAY_MS = 86_400_000
NOW_MS = 1_000 * DAY_MS


class Log(AppliedLog):
    def __init__(self, path: str) -> None:
        super().__init__(path, at_ms=NOW_MS)

    def push(self, repo: str, tag: str, name: str, pushed_ms: int = NOW_MS) -> pb.Result:
        self.apply(
            link_blob=pb.LinkBlob(repository=repo, digest=D("cfg"), size=10, replica_id="r0")
        )
        body = json.dumps({"schemaVersion": 2, "config": {"digest": D("cfg")}, "n": name})
        return self.apply(
            put_manifest=pb.PutManifest(
                repository=repo,
                digest=D(name),
                media_type="x",
                body=body.encode(),
                tag=tag,
                blob_digests=[D("cfg")],
                pushed_at_ms=pushed_ms,
            )
        )

    def set_policy(self, **rules: object) -> pb.Result:
        return self.apply(
            actor="admin",
            set_repository_policy=pb.SetRepositoryPolicy(
                policy=pb.RepositoryPolicy(repository="lib/app", **rules)  # type: ignore[arg-type]
            ),
        )


def test_an_immutable_tag_is_neither_pushed_again_nor_deleted(tmp_path) -> None:
    log = Log(str(tmp_path))
    assert not log.push("lib/app", "1.0", "one").error_code
    assert not log.push("lib/app", "dev", "two").error_code
    assert not log.set_policy(immutable_tags=True, immutable_pattern="[0-9]*").error_code
    refused = log.push("lib/app", "1.0", "other")
    assert refused.error_code == "DENIED" and "immutable" in refused.message
    assert not log.push("lib/app", "1.0", "one").error_code  # the same manifest again: fine
    assert not log.push("lib/app", "dev", "three").error_code  # not covered by the pattern
    deleting = pb.DeleteTag(repository="lib/app", tag="1.0")
    assert log.apply(delete_tag=deleting).error_code == "DENIED"
    by_digest = pb.DeleteManifest(repository="lib/app", digest=D("one"))
    assert log.apply(delete_manifest=by_digest).error_code == "DENIED"
    assert log.state.resolve("lib/app", "1.0") == D("one")
    gone = pb.DeleteRepository(repository="lib/app")
    assert log.apply(delete_repository=gone).error_code == "DENIED"
    log.set_policy()  # lifted
    assert not log.apply(delete_tag=deleting).error_code
    audit = log.state.view(accounts.audit_log)
    assert [(e["action"], e["error"]) for e in audit] == [
        ("set_repository_policy", ""),
        ("delete_repository", "DENIED"),  # refusals are kept too
        ("set_repository_policy", ""),
    ]


def test_retention_keeps_the_newest_and_prunes_the_old_but_not_kept_or_immutable(
    tmp_path,
) -> None:
    log = Log(str(tmp_path))
    for n in range(6):
        log.push("lib/app", f"build-{n}", f"b{n}", pushed_ms=NOW_MS - (10 - n) * DAY_MS)
    log.push("lib/app", "release", "rel", pushed_ms=NOW_MS - 30 * DAY_MS)
    log.push("lib/app", "fresh", "fresh")
    log.set_policy(keep_newest=3, prune_pattern="build-*")
    plan = log.state.view(policies.retention_plan, "lib/app", NOW_MS)
    assert [t.tag for t in plan] == ["build-0", "build-1", "build-2"]
    log.set_policy(max_age_days=6, keep_pattern="release")
    plan = log.state.view(policies.retention_plan, "lib/app", NOW_MS)
    assert [t.tag for t in plan] == ["build-0", "build-1", "build-2", "build-3"]
    # build-3 is pushed again (a new manifest) before the prune is applied: it stays.
    log.push("lib/app", "build-3", "b3-again")
    pruned = log.apply(
        actor="retention", prune_tags=pb.PruneTags(repository="lib/app", tags=plan, reason="x")
    )
    assert pruned.message == "3"
    assert log.state.tags("lib/app") == ["build-3", "build-4", "build-5", "fresh", "release"]
    # A pruned tag's image goes with it when that was its last tag.
    assert log.state.manifest("lib/app", D("b0")) is None
    assert log.state.manifest("lib/app", D("b3")) is not None  # not pruned: untagged, kept
    assert log.state.view(accounts.audit_log)[-1]["action"] == "prune_tags"


def test_a_quota_needs_an_account_and_zero_removes_it(tmp_path) -> None:
    log = Log(str(tmp_path))
    quota = pb.SetNamespaceQuota(namespace="nobody", bytes=10)
    assert log.apply(set_namespace_quota=quota).error_code == "NOT_FOUND"
    log.apply(put_account=pb.PutAccount(name="team", is_org=True))
    assert not log.apply(
        set_namespace_quota=pb.SetNamespaceQuota(namespace="team", bytes=5)
    ).error_code
    assert log.state.view(policies.quotas) == {"team": 5}
    log.apply(set_namespace_quota=pb.SetNamespaceQuota(namespace="team"))
    assert log.state.view(policies.quotas) == {}


def test_the_latest_audit_entries_come_newest_first(tmp_path) -> None:
    log = Log(str(tmp_path))
    for n in range(5):
        log.apply(actor="admin", put_account=pb.PutAccount(name=f"org{n}", is_org=True))
    latest = log.state.view(accounts.audit_latest, 3)
    assert [e["fields"]["name"] for e in latest] == ["org4", "org3", "org2"]
