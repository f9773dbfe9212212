"""Tag immutability, namespace quotas and retention on a real replica, with skopeo
where a user would use it: the allowed case, the refusal and its error body, and the
audit entry of each."""

from __future__ import annotations

import httpx
import pytest

from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, image_of, layer, write_layout

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("policies") / "data"
    running = LocalCluster(str(data), env={"QREG_GC_GRACE_S": "0"}).start()
    yield running
    running.stop()


@pytest.fixture
def admin(cluster: LocalCluster):  # type: ignore[no-untyped-def]
    with cluster.client() as client:
        yield client


def push(cluster: LocalCluster, tmp_path, ref: str, label: str, size: int = 2000) -> str:
    """skopeo copies a new one-layer image to REPO:TAG; its manifest digest."""
    blobs = [layer(label, size)]
    config, manifest = image_of(blobs, label=label)
    path = write_layout(str(tmp_path / label), [config, *blobs], manifest, "t")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{path}:t", f"docker://{cluster.host}/{ref}")
    return manifest.digest


def refusal(error: AssertionError) -> str:
    return str(error)  # skopeo's message, as the user reads it


def audit(admin: httpx.Client, action: str) -> list[dict]:
    return [e for e in admin.get("/api/v0/audit").json()["changes"] if e["action"] == action]


def test_immutable_tags_refuse_a_new_push_and_a_delete_until_lifted(
    cluster, admin, tmp_path
) -> None:
    first = push(cluster, tmp_path, "lib/frozen:v1", "frozen-1")
    r = admin.put(
        "/api/v0/repositories/lib/frozen/policy",
        json={"immutable_tags": True, "immutable_pattern": "v*"},
    )
    assert r.status_code == 200, r.text
    with pytest.raises(AssertionError) as refused:
        push(cluster, tmp_path, "lib/frozen:v1", "frozen-2")
    assert "immutable" in refusal(refused.value)
    push(cluster, tmp_path, "lib/frozen:latest", "frozen-3")  # not covered by v*
    r = admin.delete("/v2/lib/frozen/manifests/v1")
    assert r.status_code == 403
    assert (
        r.json()["errors"][0]["code"] == "DENIED"
        and "immutable" in r.json()["errors"][0]["message"]
    )
    r = admin.delete(f"/v2/lib/frozen/manifests/{first}")
    assert r.status_code == 403
    assert (
        admin.get("/v2/lib/frozen/manifests/v1", headers={"Accept": OCI_MANIFEST}).headers[
            "Docker-Content-Digest"
        ]
        == first
    )
    assert admin.put("/api/v0/repositories/lib/frozen/policy", json={}).status_code == 200
    assert admin.delete("/v2/lib/frozen/manifests/v1").status_code == 202
    entries = audit(admin, "set_repository_policy")
    assert entries[-2]["actor"] == "admin" and entries[-2]["fields"]["policy"]["immutableTags"]


def test_a_push_over_the_namespace_quota_is_refused_saying_the_quota_and_usage(
    cluster, admin, tmp_path
) -> None:
    assert admin.post("/api/v0/accounts", json={"name": "quota", "is_org": True}).status_code == 201
    r = admin.put("/api/v0/namespaces/quota/quota", json={"bytes": 150_000})
    assert r.status_code == 200, r.text
    push(cluster, tmp_path, "quota/app:1", "quota-1", size=100_000)
    with pytest.raises(AssertionError) as refused:
        push(cluster, tmp_path, "quota/app:2", "quota-2", size=100_000)
    assert "quota" in refusal(refused.value)
    # The refusal, as the API answers it.
    blobs = [layer("quota-3", 100_000)]
    config, manifest = image_of(blobs, label="quota-3")
    for blob in (config, *blobs):
        admin.post(
            "/v2/quota/app/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
        )
    r = admin.put(
        "/v2/quota/app/manifests/3", content=manifest.data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 403
    error = r.json()["errors"][0]
    assert error["code"] == "DENIED" and "quota of 146.5 KiB" in error["message"]
    assert error["detail"]["quota"] == 150_000 and error["detail"]["used"] > 100_000
    # Another tag of an image already there adds nothing: allowed.
    existing = admin.get("/v2/quota/app/manifests/1", headers={"Accept": OCI_MANIFEST})
    r = admin.put(
        "/v2/quota/app/manifests/again",
        content=existing.content,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201
    usage = admin.get("/api/v0/usage").json()
    row = next(n for n in usage["namespaces"] if n["name"] == "quota")
    assert row["quota_bytes"] == 150_000 and 100_000 < row["bytes"] < 150_000
    assert audit(admin, "set_namespace_quota")[-1]["fields"]["bytes"] == "150000"


def test_retention_prunes_the_oldest_tags_before_a_collection_frees_their_layers(
    cluster, admin, tmp_path
) -> None:
    digests = [push(cluster, tmp_path, f"ci/app:build-{n}", f"ci-{n}") for n in range(5)]
    push(cluster, tmp_path, "ci/app:release", "ci-release")
    r = admin.put(
        "/api/v0/repositories/ci/app/policy",
        json={"retention": {"keep_newest": 2, "prune_pattern": "build-*"}},
    )
    assert r.status_code == 200, r.text
    dry = admin.post("/api/v0/gc/runs", json={"dry_run": True}).json()
    assert dry["tags_to_prune"] == {"ci/app": ["build-0", "build-1", "build-2"]}
    assert (
        admin.get("/v2/ci/app/tags/list").json()["tags"][0] == "build-0"
    )  # a dry run prunes nothing
    pruned_layers = [
        admin.get(f"/v2/ci/app/manifests/{d}", headers={"Accept": OCI_MANIFEST}).json()["layers"][
            0
        ]["digest"]
        for d in digests[:3]
    ]
    run = admin.post("/api/v0/gc/runs", json={}).json()
    assert run["tags_pruned"] == 3 and run["blobs_removed"] >= 6  # config and layer of each
    assert admin.get("/v2/ci/app/tags/list").json()["tags"] == ["build-3", "build-4", "release"]
    for digest in pruned_layers:
        assert admin.head(f"/v2/ci/app/blobs/{digest}").status_code == 404
    entries = audit(admin, "prune_tags")
    assert entries[-1]["actor"] == "retention"
    assert [t["tag"] for t in entries[-1]["fields"]["tags"]] == ["build-0", "build-1", "build-2"]
