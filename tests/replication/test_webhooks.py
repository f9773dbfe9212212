"""Events and webhooks on a real three-replica cluster, delivering to an HTTPS receiver
with its own CA: signed deliveries for pushes and tag deletions, one per event while
the delivering replica is killed mid-stream, retries at 1, 2 and 4 seconds, internal
targets refused without the administrator's override, test and redeliver."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_scanning import osv_zip
from tests.cluster import LocalCluster
from tests.qreg_cli import qreg as run_qreg
from tests.replication.test_three_replicas import push_image
from tests.unit.replica.test_scan import ADVISORIES
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.slow

SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    running = Receiver(str(tmp_path_factory.mktemp("receiver"))).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    running = LocalCluster(str(tmp_path_factory.mktemp("data")), replicas=3).start()
    yield running
    running.stop()


def _hook(cluster: LocalCluster, receiver: Receiver, path: str, **extra: object) -> dict:
    with cluster.client() as admin:
        r = admin.post("/api/v0/webhooks", json={
            "url": receiver.url + path, "secret": SECRET, "ca_pem": receiver.ca_pem,
            "allow_private": True, **extra,
        })  # fmt: skip
        assert r.status_code == 201, r.text
        return dict(r.json())


def _wait(what: str, check, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_internal_targets_need_the_administrators_override(
    cluster: LocalCluster, receiver: Receiver
) -> None:
    with cluster.client() as admin:
        r = admin.post("/api/v0/webhooks", json={"url": receiver.url + "/x", "secret": SECRET})
        assert r.status_code == 400 and "internal address" in r.text, r.text
        for url in (
            "ftp://example.org/",
            "https://user:pw@example.org/",
            "http://169.254.169.254/",
        ):
            assert admin.post("/api/v0/webhooks", json={"url": url}).status_code == 400
        r = admin.post("/api/v0/accounts", json={"name": "orca", "password": "orca-password-1"})
        assert r.status_code == 201
    orca = httpx.Client(base_url=cluster.url, auth=("orca", "orca-password-1"), timeout=30)
    with orca:
        r = orca.post("/api/v0/webhooks", json={"url": receiver.url, "scope": "orca/",
                                                "allow_private": True})  # fmt: skip
        assert r.status_code == 403, r.text  # only admins reach internal addresses
        assert orca.post("/api/v0/webhooks", json={"url": "https://example.org/",
                                                   "scope": ""}).status_code == 403  # fmt: skip


def test_signed_deliveries_once_per_event_while_the_deliverer_is_killed(
    cluster: LocalCluster, receiver: Receiver
) -> None:
    hook = _hook(cluster, receiver, "/all", scope="ci/")
    for n in range(10):
        push_image(cluster.urls[n % 3], "ci/app", f"v{n}", f"seed{n}")
    with cluster.client() as admin:
        r = admin.delete("/v2/ci/app/manifests/v0")  # a tag deletion
        assert r.status_code == 202, r.text
        delivered_by = admin.get(f"/api/v0/webhooks/{hook['id']}").json()["delivered_by"]
    victim = int(delivered_by.rsplit("-", 1)[1])
    for n in range(10, 30):
        if n == 15:
            cluster.signal(victim, signal.SIGKILL)
        push_image(cluster.urls[(victim + 1 + n % 2) % 3], "ci/app", f"v{n}", f"seed{n}")
    with cluster.client(index=(victim + 1) % 3) as admin:
        listed = admin.get("/api/v0/events", params={"repository": "ci/", "n": 1000})
        wanted = {e["id"]: e for e in listed.json()["events"]}
    assert len(wanted) == 31  # 30 pushes and a tag deletion
    _wait(
        "every event delivered",
        lambda: {r.json()["id"] for r in receiver.on("/all")} >= set(wanted),
    )
    deliveries = receiver.on("/all")
    assert all(r.signed_with(SECRET) for r in deliveries)
    ids = [r.headers["x-qreg-delivery"] for r in deliveries]
    assert len(set(ids)) == len(wanted)
    duplicates = len(ids) - len(set(ids))
    assert duplicates <= 4, f"{duplicates} repeated deliveries (only those in flight may repeat)"
    pushes = [r.json() for r in deliveries if r.headers["x-qreg-event"] == "push"]
    first = next(p for p in pushes if p["tag"] == "v1")
    assert first["repository"] == "ci/app" and first["digest"].startswith("sha256:")
    assert first["pull"].endswith("/ci/app:v1") and first["media_type"].endswith("json")
    assert first["actor"] == "admin" and first["occurred_at"].endswith("Z")
    assert any(r.json()["type"] == "tag_delete" for r in deliveries)
    cluster.restart(victim)


def test_a_failing_receiver_gets_the_event_again_at_the_backoff(
    cluster: LocalCluster, receiver: Receiver
) -> None:
    receiver.failures["/flaky"] = [500, 500, 500]
    hook = _hook(cluster, receiver, "/flaky", scope="flaky/app", events=["push"])
    push_image(cluster.url, "flaky/app", "1", "flaky")
    _wait("the fourth attempt", lambda: len(receiver.on("/flaky")) >= 4, timeout=30)
    times = [r.at for r in receiver.on("/flaky")]
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)]
    for gap, wanted in zip(gaps, (1, 2, 4), strict=False):
        assert wanted - 0.1 <= gap <= wanted + 1.0, gaps
    time.sleep(1)
    assert len(receiver.on("/flaky")) == 4  # delivered: no more attempts
    with cluster.client() as admin:
        _wait("the delivery recorded", lambda: admin.get(
            f"/api/v0/webhooks/{hook['id']}").json()["deliveries"])  # fmt: skip
        log = admin.get(f"/api/v0/webhooks/{hook['id']}").json()["deliveries"]
        assert log[0]["status"] == "delivered" and log[0]["attempts"] == 4 and log[0]["code"] == 200
        # Redeliver: the same event, the same delivery id, once more.
        event = log[0]["event"]
        r = admin.post(f"/api/v0/webhooks/{hook['id']}/deliveries/{event}/redeliver")
        assert r.status_code == 202, r.text
        _wait("the redelivery", lambda: len(receiver.on("/flaky")) == 5, timeout=30)
        again = receiver.on("/flaky")
        assert again[-1].headers["x-qreg-delivery"] == again[0].headers["x-qreg-delivery"]
        # Test: a ping now, from the replica asked.
        r = admin.post(f"/api/v0/webhooks/{hook['id']}/test")
        assert r.json()["ok"] and r.json()["code"] == 200
        assert receiver.on("/flaky")[-1].headers["x-qreg-event"] == "ping"


def test_a_scan_result_is_delivered(cluster: LocalCluster, receiver: Receiver, tmp_path) -> None:
    hook = _hook(cluster, receiver, "/scans", scope="scanned/", events=["scan"])
    advisories = osv_zip(tmp_path / "Debian.zip", [r for r in ADVISORIES if r["id"][:4] != "GHSA"])
    with cluster.client() as admin, open(advisories, "rb") as f:
        r = admin.put("/api/v0/scan/database/Debian", content=f.read())
        assert r.status_code in (200, 201), r.text
    manifest = push_image(cluster.url, "scanned/app", "1", "scanned")
    _wait("the scan delivered", lambda: bool(receiver.on("/scans")), timeout=90)
    delivery = receiver.on("/scans")[0]
    assert delivery.signed_with(SECRET) and delivery.headers["x-qreg-event"] == "scan"
    body = delivery.json()
    assert body["repository"] == "scanned/app" and body["digest"] == manifest.digest
    assert "db_version" in body["detail"] and "summary" in body["detail"], body
    assert hook["events"] == ["scan"]


def test_events_are_listed_for_those_who_may_read_them(cluster: LocalCluster) -> None:
    push_image(cluster.url, "orca/private", "1", "orca-private")
    with cluster.client(index=1) as admin:
        page = admin.get("/api/v0/events", params={"type": "push", "n": 2}).json()
        assert len(page["events"]) == 2 and page["next"]
        rest = admin.get("/api/v0/events", params={"type": "push", "after": page["next"]})
        assert all(e["id"] > page["next"] for e in rest.json()["events"])
        assert admin.get("/api/v0/events", params={"type": "nonsense"}).status_code == 400
    with httpx.Client(base_url=cluster.url, auth=("orca", "orca-password-1")) as orca:
        seen = {e["repository"] for e in orca.get("/api/v0/events").json()["events"]}
        assert seen == {"orca/private"}  # their own namespace only


def test_the_command_line(cluster: LocalCluster, receiver: Receiver, tmp_path) -> None:
    env = {**os.environ, "QREG_LOGIN_FILE": str(tmp_path / "login.json")}

    def qreg(*args: str, stdin: str = "") -> str:
        return run_qreg(*args, env=env, stdin=stdin)

    qreg("login", cluster.url, "-u", "admin", "--password-stdin",
         stdin=cluster.admin_password + "\n")  # fmt: skip
    ca = tmp_path / "receiver-ca.pem"
    ca.write_text(receiver.ca_pem)
    out = qreg("webhook", "add", receiver.url + "/cli", "--scope", "cli/", "--event", "push",
               "--ca-file", str(ca), "--allow-private")  # fmt: skip
    hook_id = out.split()[1]
    secret = out.split("secret (shown once; verify X-Qreg-Signature-256 with it): ")[1].strip()
    assert hook_id in qreg("webhook", "list")
    push_image(cluster.url, "cli/app", "7", "cli")
    _wait("the delivery", lambda: len(receiver.on("/cli")) == 1)
    assert receiver.on("/cli")[0].signed_with(secret)
    events = qreg("events", "--repository", "cli/", "--type", "push", "--since", "1h")
    assert "push" in events and "cli/app" in events and "7" in events
    _wait("the log", lambda: "delivered" in qreg("webhook", "show", hook_id))
    assert "ping: 200" in qreg("webhook", "test", hook_id)
    qreg("webhook", "remove", hook_id)
    assert hook_id not in qreg("webhook", "list")
