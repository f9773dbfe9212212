"""Garbage collection through the whole in-process app (one replica): what goes and
what stays, files leaving the disk, dry runs, time limits, schedules, and uploads
racing a collection of the same bytes."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from replica.internal_auth import INTERNAL_HEADER, internal_token
from tests.images import OCI_MANIFEST, Blob, image_of, layer
from tests.unit.replica.in_process import replica

SECRET = "an in-process test secret"
OPERATOR = {INTERNAL_HEADER: internal_token(SECRET) or ""}


@pytest.fixture
def data_dir(tmp_path) -> str:
    return str(tmp_path / "replica")


@pytest.fixture
def client(data_dir):
    with replica(data_dir, gc_grace_s=0.0) as c:
        yield c


def upload(client, name: str, blob: Blob) -> None:
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data)
    assert r.status_code == 201, r.text


def push(client, name: str, tag: str, layers: list[Blob], label: str) -> tuple[Blob, Blob]:
    config, manifest = image_of(layers, label=label)
    for blob in (config, *layers):
        upload(client, name, blob)
    r = client.put(
        f"/v2/{name}/manifests/{tag}", content=manifest.data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201, r.text
    return config, manifest


def on_disk(data_dir: str, blob: Blob) -> bool:
    hexpart = blob.digest.split(":")[1]
    return os.path.exists(
        os.path.join(data_dir, "storage", "blobs", "sha256", hexpart[:2], hexpart)
    )


def wait_gone(data_dir: str, blobs: list[Blob], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(on_disk(data_dir, b) for b in blobs):
        assert time.monotonic() < deadline, "files of collected blobs are still on disk"
        time.sleep(0.05)


def gc_run(client, **body) -> dict:
    r = client.post("/api/v0/gc/runs", json=body, headers=OPERATOR)
    assert r.status_code == 200, r.text
    return r.json()


def test_deleted_images_layers_leave_the_disk_and_shared_ones_stay(client, data_dir) -> None:
    shared, only_lona = layer("base"), layer("lona")
    lona_config, lona = push(client, "engineering/barca", "lona", [shared, only_lona], "lona")
    other_config, _ = push(client, "engineering/barca", "other", [shared], "other")
    r = client.delete(f"/v2/engineering/barca/manifests/{lona.digest}")
    assert r.status_code == 202
    assert client.get("/v2/engineering/barca/tags/list").json()["tags"] == ["other"]

    dry = gc_run(client, dry_run=True)
    assert sorted(dry["digests"]) == sorted([lona_config.digest, only_lona.digest])
    assert dry["bytes"] == len(lona_config.data) + len(only_lona.data)
    assert all(on_disk(data_dir, b) for b in (lona_config, only_lona))  # a dry run removes nothing

    run = gc_run(client)
    assert run["outcome"] == "finished"
    assert run["blobs_removed"] == 2 and run["bytes_removed"] == dry["bytes"]
    wait_gone(data_dir, [lona_config, only_lona])
    assert on_disk(data_dir, shared) and on_disk(data_dir, other_config)
    for blob in (lona_config, only_lona):
        assert client.head(f"/v2/engineering/barca/blobs/{blob.digest}").status_code == 404
    assert client.get("/v2/engineering/barca/manifests/other").status_code == 200
    assert client.get(f"/v2/engineering/barca/blobs/{shared.digest}").content == shared.data

    status = client.get("/api/v0/gc", headers=OPERATOR).json()
    latest = status["runs"][0]
    assert latest["epoch"] == run["epoch"] and latest["outcome"] == "finished"
    deadline = time.monotonic() + 10
    while not latest["sweeps"]:
        assert time.monotonic() < deadline, "the sweep was never recorded"
        time.sleep(0.1)
        latest = client.get("/api/v0/gc", headers=OPERATOR).json()["runs"][0]
    assert latest["sweeps"] == [
        {
            "replica": "replica-0",
            "at": latest["sweeps"][0]["at"],
            "files_deleted": 2,
            "bytes_freed": dry["bytes"],
            "errors": 0,
            "last_error": None,
        }
    ]
    metrics = client.get("/metrics").text
    assert "qreg_gc_files_deleted_total 2.0" in metrics
    assert 'qreg_gc_runs_total{outcome="finished"} 1.0' in metrics


def test_a_collected_blob_can_be_uploaded_again_but_not_mounted(client, data_dir) -> None:
    blob = layer("again")
    upload(client, "a/one", blob)
    gc_run(client)
    wait_gone(data_dir, [blob])
    # A mount of a collected blob finds nothing: the client gets an upload session.
    r = client.post("/v2/a/two/blobs/uploads/", params={"mount": blob.digest, "from": "a/one"})
    assert r.status_code == 202
    upload(client, "a/two", blob)
    assert on_disk(data_dir, blob)
    assert client.get(f"/v2/a/two/blobs/{blob.digest}").content == blob.data
    time.sleep(0.2)  # the sweeper has had every chance to delete the new copy
    assert on_disk(data_dir, blob)


def test_a_run_over_its_time_limit_stops_between_batches_and_the_next_resumes(client) -> None:
    for n in range(1_100):
        upload(client, "many/blobs", Blob("application/octet-stream", f"blob {n}".encode()))
    first = gc_run(client, time_limit_s=0.001)
    assert first["outcome"] == "time limit"
    assert first["blobs_marked"] == 1_100 and first["blobs_removed"] == 500
    second = gc_run(client, time_limit_s=0.001)
    assert second["blobs_marked"] == 600 and second["blobs_removed"] == 500
    third = gc_run(client)
    assert third["outcome"] == "finished" and third["blobs_removed"] == 100
    assert gc_run(client, dry_run=True)["blobs"] == 0


def test_a_schedule_runs_at_its_time(client) -> None:
    at = datetime.now(UTC) + timedelta(seconds=4)
    cron = f"{at.second} * * * * *"
    r = client.put("/api/v0/gc/schedule", json={"cron": cron}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert r.json()["schedule"]["cron"] == cron
    deadline = time.monotonic() + 15
    while not (runs := client.get("/api/v0/gc", headers=OPERATOR).json()["runs"]):
        assert time.monotonic() < deadline, "the scheduled run did not happen"
        time.sleep(0.2)
    started = datetime.fromisoformat(runs[0]["started"])
    assert abs((started - at.replace(microsecond=0)).total_seconds()) < 2
    assert len(runs) == 1
    assert client.delete("/api/v0/gc/schedule", headers=OPERATOR).json()["schedule"]["cron"] is None


def test_only_operators_may_collect_and_bad_schedules_are_refused(client) -> None:
    r = client.post("/api/v0/gc/runs", json={})
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    r = client.put("/api/v0/gc/schedule", json={"cron": "0 0 * * *"}, headers=OPERATOR)
    assert r.status_code == 400 and "six fields" in r.json()["errors"][0]["message"]
    r = client.post("/api/v0/gc/runs", json={"time_limit_s": "soon"}, headers=OPERATOR)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "INVALID_INPUT"


def test_untagged_manifests_go_when_asked_and_their_blobs_with_them(client, data_dir) -> None:
    only, shared = layer("untagged"), layer("kept")
    config, manifest = image_of([only, shared], label="untagged")
    for blob in (config, only, shared):
        upload(client, "u/app", blob)
    r = client.put(
        f"/v2/u/app/manifests/{manifest.digest}",
        content=manifest.data,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201
    push(client, "u/app", "kept", [shared], "kept")
    assert gc_run(client)["blobs_removed"] == 0  # the untagged image is kept by default
    time.sleep(0.5)
    dry = gc_run(client, dry_run=True, untagged_days=0.3 / 86_400)
    assert dry["untagged_manifests"] == {"u/app": [manifest.digest]}
    run = gc_run(client, untagged_days=0.3 / 86_400)
    assert run["manifests_removed"] == 1 and run["blobs_removed"] == 2  # its config and layer
    assert client.get(f"/v2/u/app/manifests/{manifest.digest}").status_code == 404
    wait_gone(data_dir, [config, only])
    assert on_disk(data_dir, shared)
    assert client.get("/v2/u/app/manifests/kept").status_code == 200
