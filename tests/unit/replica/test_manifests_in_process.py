"""Manifests, tags, the catalog and referrers through the whole in-process app."""

from __future__ import annotations

import json

import pytest

from tests.images import OCI_MANIFEST, image
from tests.unit.replica.in_process import replica


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with replica(str(tmp_path_factory.mktemp("replica"))) as c:
        yield c


def push(client, name: str, tag: str, seed: str) -> str:
    config, layers, manifest = image(seed, layers=1, layer_size=500)
    for blob in (config, *layers):
        r = client.post(
            f"/v2/{name}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
        )
        assert r.status_code == 201, r.text
    r = client.put(
        f"/v2/{name}/manifests/{tag}", content=manifest.data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == manifest.digest
    return manifest.digest


def test_a_manifest_by_tag_and_by_digest(client) -> None:
    digest = push(client, "m/app", "1", "m1")
    by_tag = client.get("/v2/m/app/manifests/1", headers={"Accept": OCI_MANIFEST})
    assert by_tag.status_code == 200 and by_tag.headers["Docker-Content-Digest"] == digest
    by_digest = client.get(f"/v2/m/app/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
    assert by_digest.content == by_tag.content
    assert by_tag.headers["Content-Type"] == OCI_MANIFEST


def test_a_manifest_naming_a_missing_blob_is_refused(client) -> None:
    config, layers, _ = image("orphan", layers=1, layer_size=10)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layers[0].descriptor()],
        }
    )
    r = client.put("/v2/m/orphan/manifests/1", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"


def test_tags_page_in_order(client) -> None:
    for tag in ("c", "a", "b"):
        push(client, "m/tags", tag, f"t{tag}")
    first = client.get("/v2/m/tags/tags/list", params={"n": 2})
    assert first.json()["tags"] == ["a", "b"]
    assert "last=b" in first.headers["Link"]
    rest = client.get("/v2/m/tags/tags/list", params={"n": 2, "last": "b"})
    assert rest.json()["tags"] == ["c"]


def test_the_catalog_lists_repositories(client) -> None:
    push(client, "m/listed", "1", "listed")
    names = client.get("/v2/_catalog").json()["repositories"]
    assert "m/listed" in names and names == sorted(names)


def test_deleting_a_tag_leaves_the_manifest_by_digest(client) -> None:
    digest = push(client, "m/del", "gone", "del")
    assert client.delete("/v2/m/del/manifests/gone").status_code == 202
    assert client.get("/v2/m/del/manifests/gone").status_code == 404
    r = client.get(f"/v2/m/del/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200
