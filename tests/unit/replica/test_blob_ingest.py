"""Blob uploads through the whole in-process app: monolithic, chunked, resumed, with
wrong digests and lengths. Nothing half-written becomes visible."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.unit.replica.in_process import replica


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with replica(str(tmp_path_factory.mktemp("replica"))) as c:
        yield c


def test_a_monolithic_upload_is_served_whole(client) -> None:
    data = os.urandom(300_000)
    r = client.post("/v2/ingest/one/blobs/uploads/", params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == sha256(data)
    got = client.get(f"/v2/ingest/one/blobs/{sha256(data)}")
    assert got.status_code == 200 and got.content == data
    ranged = client.get(f"/v2/ingest/one/blobs/{sha256(data)}", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]


def test_a_wrong_digest_leaves_nothing(client) -> None:
    data = os.urandom(1000)
    wrong = sha256(b"something else")
    r = client.post("/v2/ingest/two/blobs/uploads/", params={"digest": wrong}, content=data)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert client.head(f"/v2/ingest/two/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/ingest/two/blobs/{sha256(data)}").status_code == 404


def test_a_chunked_upload_in_order_and_out_of_order(client) -> None:
    data = os.urandom(200_000)
    start = client.post("/v2/ingest/three/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["Location"]
    first = client.patch(location, content=data[:100_000], headers={"Content-Range": "0-99999"})
    assert first.status_code == 202 and first.headers["Range"] == "0-99999"
    skipped = client.patch(
        location, content=data[150_000:], headers={"Content-Range": "150000-199999"}
    )
    assert skipped.status_code == 416 and skipped.headers["Range"] == "0-99999"
    assert client.get(location).headers["Range"] == "0-99999"  # where it stands
    done = client.put(location, params={"digest": sha256(data)}, content=data[100_000:])
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/ingest/three/blobs/{sha256(data)}").content == data
    assert client.get(location).status_code == 404  # the session is over


def test_a_failed_finish_ends_the_session_and_keeps_nothing(client) -> None:
    start = client.post("/v2/ingest/four/blobs/uploads/")
    location = start.headers["Location"]
    assert client.patch(location, content=b"abc").status_code == 202
    wrong = sha256(b"abcd")
    r = client.put(location, params={"digest": wrong})
    assert r.status_code == 400
    assert client.get(location).status_code == 404
    assert client.head(f"/v2/ingest/four/blobs/{wrong}").status_code == 404


def test_errors_come_in_the_spec_format(client) -> None:
    r = client.get("/v2/ingest/never/manifests/latest")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    data = b"a layer"
    client.post("/v2/ingest/five/blobs/uploads/", params={"digest": sha256(data)}, content=data)
    r = client.get("/v2/ingest/five/manifests/latest")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    head = client.head("/v2/ingest/five/manifests/latest")
    assert head.status_code == 404 and head.content == b""
    bad = client.get("/v2/UPPER/manifests/latest")
    assert bad.status_code in (400, 404) and bad.json()["errors"][0]["code"] == "NAME_INVALID"
