"""The OCI Distribution API of one real replica process, driven over HTTP with httpx."""

from __future__ import annotations

import json
import os
import uuid

import httpx
import pytest

from tests.cluster import LocalCluster
from tests.images import OCI_INDEX, OCI_MANIFEST, Blob, image, sha256

pytestmark = pytest.mark.slow

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


@pytest.fixture()
def client(registry: LocalCluster) -> httpx.Client:
    with registry.client() as c:
        yield c


def repo() -> str:
    return f"test/{uuid.uuid4().hex[:10]}"


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    digest = sha256(data)
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def push_image(client: httpx.Client, name: str, tag: str, seed: str = "x") -> Blob:
    config, layers, manifest = image(seed)
    for blob in [config, *layers]:
        push_blob(client, name, blob.data)
    r = client.put(
        f"/v2/{name}/manifests/{tag}", content=manifest.data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201, r.text
    return manifest


def error_code(r: httpx.Response) -> str:
    return r.json()["errors"][0]["code"]


def test_base_endpoint(client: httpx.Client) -> None:
    r = client.get("/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert client.get("/_ping").status_code == 200
    health = client.get("/health").json()
    assert health["role"] == "leader" and health["has_quorum"] is True


def test_monolithic_push_and_pull_with_range(client: httpx.Client) -> None:
    name = repo()
    data = os.urandom(300_000)
    digest = push_blob(client, name, data)
    r = client.get(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Docker-Content-Digest"] == digest
    head = client.head(f"/v2/{name}/blobs/{digest}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    part = client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    tail = client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]
    bad = client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416


def test_post_then_put(client: httpx.Client) -> None:
    name = repo()
    data = os.urandom(1000)
    r = client.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["Location"]
    r = client.put(location, params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201
    assert client.get(f"/v2/{name}/blobs/{sha256(data)}").content == data


def test_chunked_upload_status_and_out_of_order(client: httpx.Client) -> None:
    name = repo()
    data = os.urandom(3 * 100_000)
    location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    r = client.patch(
        location,
        content=data[:100_000],
        headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 202 and r.headers["Range"] == "0-99999"
    # The same chunk again is out of order: 416 with where the upload stands.
    r = client.patch(location, content=data[:100_000], headers={"Content-Range": "0-99999"})
    assert r.status_code == 416 and r.headers["Range"] == "0-99999"
    r = client.patch(
        r.headers["Location"],
        content=data[100_000:200_000],
        headers={"Content-Range": "100000-199999"},
    )
    assert r.status_code == 202
    status = client.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-199999"
    # A streamed chunk without Content-Length.
    r = client.patch(location, content=iter([data[200_000:250_000], data[250_000:]]))
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    r = client.put(location, params={"digest": sha256(data)})
    assert r.status_code == 201
    assert client.get(f"/v2/{name}/blobs/{sha256(data)}").content == data


def test_cancel_upload(client: httpx.Client) -> None:
    name = repo()
    location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=b"abc").status_code == 202
    assert client.delete(location).status_code == 204
    r = client.get(location)
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_cross_repository_mount(client: httpx.Client) -> None:
    source, target = repo(), repo()
    data = os.urandom(5000)
    digest = push_blob(client, source, data)
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201 and r.headers["Location"] == f"/v2/{target}/blobs/{digest}"
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data
    # Nothing to mount: a fresh session instead.
    r = client.post(
        f"/v2/{target}/blobs/uploads/", params={"mount": sha256(b"nope"), "from": source}
    )
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["Location"]


def test_blob_is_visible_only_in_repositories_that_link_it(client: httpx.Client) -> None:
    a, b = repo(), repo()
    digest = push_blob(client, a, b"private to a")
    r = client.get(f"/v2/{b}/blobs/{digest}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"


def test_manifest_by_tag_and_digest_and_accept(client: httpx.Client) -> None:
    name = repo()
    manifest = push_image(client, name, "v1")
    for ref in ("v1", manifest.digest):
        r = client.get(f"/v2/{name}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.content == manifest.data
        assert r.headers["Docker-Content-Digest"] == manifest.digest
        assert r.headers["Content-Type"] == OCI_MANIFEST
    head = client.head(f"/v2/{name}/manifests/v1")
    assert head.headers["Content-Length"] == str(len(manifest.data))
    r = client.get(f"/v2/{name}/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"


def test_docker_manifest_and_manifest_list(client: httpx.Client) -> None:
    name = repo()
    config = push_blob(client, name, b'{"architecture":"amd64","os":"linux"}')
    layer = push_blob(client, name, b"layer bytes")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config,
                "size": 37,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": layer,
                    "size": 11,
                }
            ],
        }
    ).encode()
    r = client.put(
        f"/v2/{name}/manifests/amd64", content=manifest, headers={"Content-Type": DOCKER_MANIFEST}
    )
    assert r.status_code == 201
    listing = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": sha256(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    r = client.put(
        f"/v2/{name}/manifests/latest", content=listing, headers={"Content-Type": DOCKER_LIST}
    )
    assert r.status_code == 201
    r = client.get(f"/v2/{name}/manifests/latest", headers={"Accept": DOCKER_LIST})
    assert r.headers["Content-Type"] == DOCKER_LIST and r.content == listing


def test_manifest_with_missing_blob_or_child_is_refused(client: httpx.Client) -> None:
    name = repo()
    config, layers, manifest = image("missing")
    push_blob(client, name, config.data)  # the layers are never pushed
    r = client.put(
        f"/v2/{name}/manifests/v1", content=manifest.data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest.descriptor()]}
    ).encode()
    r = client.put(f"/v2/{name}/manifests/all", content=index, headers={"Content-Type": OCI_INDEX})
    assert r.status_code in (400, 404) and error_code(r) == "MANIFEST_UNKNOWN"
    assert client.get(f"/v2/{name}/manifests/v1").status_code == 404


def test_bad_manifests(client: httpx.Client) -> None:
    name = repo()
    push_image(client, name, "keep")
    r = client.put(
        f"/v2/{name}/manifests/v1", content=b"not json{", headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"
    r = client.put(
        f"/v2/{name}/manifests/v1",
        content=b"x" * (4 * 1024 * 1024 + 1),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 413
    manifest = push_image(client, name, "other", seed="other")
    r = client.put(
        f"/v2/{name}/manifests/{sha256(b'different')}",
        content=manifest.data,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == ["keep", "other"]


def test_a_reference_that_cannot_exist_is_not_found(client: httpx.Client) -> None:
    name = repo()
    push_image(client, name, "keep")
    for method in ("GET", "HEAD"):
        r = client.request(method, f"/v2/{name}/manifests/.INVALID_MANIFEST_NAME")
        assert r.status_code == 404, method
        if method == "GET":
            assert error_code(r) == "MANIFEST_UNKNOWN"
    r = client.put(
        f"/v2/{name}/manifests/.INVALID_MANIFEST_NAME",
        content=b"{}",
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"


def test_bad_blob_uploads_change_nothing(client: httpx.Client) -> None:
    name = repo()
    data = os.urandom(10_000)
    wrong = sha256(b"something else")
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": wrong}, content=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert client.head(f"/v2/{name}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{name}/blobs/{sha256(data)}").status_code == 404
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": "sha256:xyz"}, content=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    r = client.get(f"/v2/{name}/blobs/uploads/{'0' * 32}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_invalid_names(client: httpx.Client) -> None:
    for path in (
        "/v2/Upper/manifests/latest",
        "/v2/a/%2E%2E/b/manifests/latest",
        "/v2/a//b/tags/list",
        "/v2/-a/blobs/uploads/",
    ):
        r = client.request("POST" if path.endswith("uploads/") else "GET", path)
        assert r.status_code in (400, 404) and error_code(r) == "NAME_INVALID", path


def test_path_with_dotdot_is_refused(registry: LocalCluster) -> None:
    # httpx normalises "..", so send the raw request line.
    import socket

    host, port = registry.host.split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            b"GET /v2/a/../../../etc/manifests/latest HTTP/1.1\r\n"
            b"Host: x\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert b" 400 " in answer.split(b"\r\n")[0] and b"NAME_INVALID" in answer


def test_tags_pagination(client: httpx.Client) -> None:
    name = repo()
    manifest = push_image(client, name, "a")
    for tag in ("b", "c", "d", "e"):
        client.put(
            f"/v2/{name}/manifests/{tag}",
            content=manifest.data,
            headers={"Content-Type": OCI_MANIFEST},
        )
    r = client.get(f"/v2/{name}/tags/list", params={"n": 2})
    assert r.json()["tags"] == ["a", "b"]
    assert r.headers["Link"] == f'</v2/{name}/tags/list?n=2&last=b>; rel="next"'
    r = client.get(f"/v2/{name}/tags/list", params={"n": 2, "last": "b"})
    assert r.json()["tags"] == ["c", "d"]
    r = client.get(f"/v2/{name}/tags/list", params={"n": 2, "last": "d"})
    assert r.json()["tags"] == ["e"] and "Link" not in r.headers
    r = client.get(f"/v2/{name}/tags/list", params={"n": 10**12})
    assert r.status_code == 400 and error_code(r) == "PAGINATION_NUMBER_INVALID"
    r = client.get("/v2/never/pushed/tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


def test_catalog_pagination(client: httpx.Client) -> None:
    names = sorted(f"catalog/{uuid.uuid4().hex[:8]}" for _ in range(3))
    for name in names:
        push_blob(client, name, name.encode())
    everything = client.get("/v2/_catalog").json()["repositories"]
    assert all(name in everything for name in names) and everything == sorted(everything)
    r = client.get("/v2/_catalog", params={"n": 1, "last": names[0]})
    assert r.json()["repositories"] == [everything[everything.index(names[0]) + 1]]
    assert 'rel="next"' in r.headers["Link"]
    r = client.get("/v2/_catalog", params={"n": 0})
    assert r.status_code == 200 and r.json()["repositories"] == [] and "Link" not in r.headers


def test_referrers(client: httpx.Client) -> None:
    name = repo()
    subject = push_image(client, name, "v1")
    empty = push_blob(client, name, b"{}")
    payload = push_blob(client, name, b"signature")
    refs = {}
    for artifact_type in ("application/vnd.example.sig", "application/vnd.example.sbom"):
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": empty,
                    "size": 2,
                },
                "layers": [{"mediaType": "application/octet-stream", "digest": payload, "size": 9}],
                "subject": subject.descriptor(),
                "annotations": {"kind": artifact_type},
            }
        ).encode()
        r = client.put(
            f"/v2/{name}/manifests/{sha256(body)}",
            content=body,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code == 201 and r.headers["OCI-Subject"] == subject.digest
        refs[artifact_type] = sha256(body)
    r = client.get(f"/v2/{name}/referrers/{subject.digest}")
    index = r.json()
    assert r.headers["Content-Type"] == OCI_INDEX
    assert {m["digest"] for m in index["manifests"]} == set(refs.values())
    r = client.get(
        f"/v2/{name}/referrers/{subject.digest}",
        params={"artifactType": "application/vnd.example.sbom"},
    )
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [refs["application/vnd.example.sbom"]]
    assert r.json()["manifests"][0]["annotations"] == {"kind": "application/vnd.example.sbom"}
    # Deleting a referrer removes it from the list.
    client.delete(f"/v2/{name}/manifests/{refs['application/vnd.example.sig']}")
    r = client.get(f"/v2/{name}/referrers/{subject.digest}")
    assert [m["digest"] for m in r.json()["manifests"]] == [refs["application/vnd.example.sbom"]]


def test_deletes(client: httpx.Client) -> None:
    name = repo()
    manifest = push_image(client, name, "v1")
    client.put(
        f"/v2/{name}/manifests/v2", content=manifest.data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert client.delete(f"/v2/{name}/manifests/v2").status_code == 202
    assert client.get(f"/v2/{name}/manifests/v2").status_code == 404
    assert client.get(f"/v2/{name}/manifests/v1").status_code == 200
    assert client.delete(f"/v2/{name}/manifests/{manifest.digest}").status_code == 202
    assert client.get(f"/v2/{name}/manifests/v1").status_code == 404
    r = client.delete(f"/v2/{name}/manifests/{manifest.digest}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    layer = json.loads(manifest.data)["layers"][0]["digest"]
    assert client.delete(f"/v2/{name}/blobs/{layer}").status_code == 202
    assert client.head(f"/v2/{name}/blobs/{layer}").status_code == 404


def test_unsupported_method(client: httpx.Client) -> None:
    r = client.request("PATCH", f"/v2/{repo()}/manifests/latest")
    assert r.status_code == 405 and error_code(r) == "UNSUPPORTED"


def test_metrics(client: httpx.Client) -> None:
    name = repo()
    data = os.urandom(12345)
    digest = push_blob(client, name, data)
    client.get(f"/v2/{name}/blobs/{digest}")
    text = client.get("/metrics").text
    assert 'qreg_http_requests_total{method="GET",route="blobs",status="200"}' in text
    assert "qreg_raft_is_leader 1.0" in text
    sent = float(
        next(
            line.split()[1]
            for line in text.splitlines()
            if line.startswith("qreg_blob_bytes_sent_total")
        )
    )
    assert sent >= len(data)


def _raw_request(registry: LocalCluster, head: bytes, body: bytes) -> None:
    """Send a request whose body stops short of its Content-Length, then hang up."""
    import socket

    host, port = registry.host.split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(head + body)


def test_truncated_body_changes_nothing(registry: LocalCluster, client: httpx.Client) -> None:
    import hashlib
    import time

    name = repo()
    data = os.urandom(100_000)
    digest = sha256(data)
    _raw_request(
        registry,
        (
            f"POST /v2/{name}/blobs/uploads/?digest={digest} HTTP/1.1\r\n"
            f"Host: x\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode(),
        data[:40_000],
    )
    location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    _raw_request(
        registry,
        (f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n").encode(),
        data[:30_000],
    )
    time.sleep(0.5)
    assert client.head(f"/v2/{name}/blobs/{digest}").status_code == 404
    # The session holds a prefix of what was sent, and says how much.
    r = client.get(location)
    received = int(r.headers["Range"].split("-")[1]) + 1 if r.headers["Range"] != "0-0" else 0
    assert received <= 30_000
    r = client.put(location, params={"digest": digest}, content=data[received:])
    assert r.status_code == 201
    assert client.get(f"/v2/{name}/blobs/{digest}").content == data
    tmp = os.path.join(registry.data, "replica-0", "storage", "tmp")
    assert os.listdir(tmp) == []
    sha512 = "sha512:" + hashlib.sha512(data).hexdigest()
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha512}, content=data)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == sha512
    assert client.get(f"/v2/{name}/blobs/{sha512}").content == data
