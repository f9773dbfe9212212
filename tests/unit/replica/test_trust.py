"""Content trust through the in-process app (one replica, open registry): publishes a
real client would make, server-managed snapshots, key rotation, and every kind of
tampering refused with Notary's code and nothing changed; the signed-only policy on
manifest GETs; canonical JSON."""

from __future__ import annotations

import datetime
import hashlib
import json
import time

import httpx
import pytest

from replica.auth import passwords
from replica.trust import canonical
from tests import tuf
from tests.images import OCI_MANIFEST, image_of, layer
from tests.unit.replica.in_process import replica

GUN = "registry.example:5000/lib/app"
TUF = f"/v2/{GUN}/_trust/tuf/"


@pytest.fixture
def client(tmp_path):
    with replica(str(tmp_path / "replica")) as c:
        yield c


PASSWORD = "in-process admin password"


class Tokens(httpx.Auth):
    """The admin's bearer token for whatever scope a 401 names (Docker's token flow)."""

    def __init__(self, client) -> None:
        self.client = client

    def auth_flow(self, request):
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("www-authenticate", "")
        scope = challenge.split('scope="', 1)[1].split('"', 1)[0] if "scope=" in challenge else ""
        got = self.client.get("/auth/token", params={"scope": scope}, auth=("admin", PASSWORD))
        request.headers["Authorization"] = "Bearer " + got.json()["token"]
        yield request


@pytest.fixture
def signed_in(tmp_path):
    with replica(
        str(tmp_path / "replica"),
        auth_enabled=True,
        auth_admin_password_hash=passwords.hash_password(PASSWORD),
    ) as c:
        deadline = time.monotonic() + 10
        while c.get("/api/v0/accounts", auth=("admin", PASSWORD)).status_code != 200:
            assert time.monotonic() < deadline, "the admin account was not created"
            time.sleep(0.05)
        c.auth = Tokens(c)
        yield c


def publish(client, files: dict[str, bytes]):
    return client.post(TUF, files=tuf.multipart(files))


def error_code(r) -> str:
    return r.json()["errors"][0]["code"]


def initialised(client, server_snapshot: bool = False) -> tuf.Repository:
    """A GUN with root, targets (v1, empty) and a snapshot, as `notary init; publish`."""
    repo = tuf.Repository(GUN)
    stamp_key = client.get(TUF + "timestamp.key").json()
    snapshot_key = client.get(TUF + "snapshot.key").json() if server_snapshot else None
    root = repo.root(stamp_key, snapshot_key=snapshot_key)
    targets = repo.targets({}, version=1)
    files = {"root": root, "targets": targets}
    if not server_snapshot:
        files["snapshot"] = repo.snapshot(files, version=1)
    r = publish(client, files)
    assert r.status_code == 200, r.text
    repo.published = files  # type: ignore[attr-defined]
    return repo


def current(client, role: str) -> dict:
    r = client.get(TUF + f"{role}.json")
    assert r.status_code == 200, r.text
    return r.json()


def test_publish_then_read_every_way(client) -> None:
    assert error_code(client.get(TUF + "root.json")) == "METADATA_NOT_FOUND"
    repo = initialised(client)
    root = repo.published["root"]  # type: ignore[attr-defined]
    assert client.get(TUF + "root.json").content == root  # served exactly as uploaded
    assert client.get(TUF + "1.root.json").content == root
    sha = hashlib.sha256(root).hexdigest()
    assert client.get(TUF + f"root.{sha}.json").content == root
    stamp = current(client, "timestamp")
    snapshot = client.get(TUF + "snapshot.json").content
    assert stamp["signed"]["meta"]["snapshot"] == tuf.file_meta(snapshot)
    assert stamp["signed"]["version"] == 1

    entries = {"v1": tuf.target("sha256:" + "ab" * 32, 10)}
    targets = repo.targets(entries, version=2)
    r = publish(
        client,
        {"targets": targets, "snapshot": repo.snapshot({"root": root, "targets": targets}, 2)},
    )
    assert r.status_code == 200, r.text
    assert current(client, "targets")["signed"]["targets"] == entries
    assert current(client, "timestamp")["signed"]["version"] == 2
    feed = client.get(f"/v2/{GUN}/_trust/changefeed").json()
    assert [c["Version"] for c in feed["records"]] == [1, 2]


def test_the_service_signs_the_snapshot_when_the_root_trusts_its_key(client) -> None:
    repo = initialised(client, server_snapshot=True)
    snapshot = current(client, "snapshot")
    held = client.get(TUF + "snapshot.key").json()
    assert snapshot["signatures"][0]["keyid"] == tuf.key_id(held)
    root = repo.published["root"]  # type: ignore[attr-defined]
    assert snapshot["signed"]["meta"]["root"] == tuf.file_meta(root)
    # The next publish of targets alone gets a new snapshot.
    r = publish(client, {"targets": repo.targets({"v1": tuf.target("sha256:" + "cd" * 32, 5)}, 2)})
    assert r.status_code == 200, r.text
    assert current(client, "snapshot")["signed"]["version"] == 2


def test_a_publish_without_snapshot_is_refused_when_the_client_holds_the_snapshot_key(
    client,
) -> None:
    repo = initialised(client)
    r = publish(client, {"targets": repo.targets({}, 2)})
    assert r.status_code == 400 and error_code(r) == "INVALID_UPDATE"
    assert "snapshot" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "tampering",
    ["bad signature", "rolled back", "snapshot mismatch", "not delegated", "root of another gun"],
)
def test_tampered_updates_are_refused_and_change_nothing(client, tampering: str) -> None:
    repo = initialised(client)
    root = repo.published["root"]  # type: ignore[attr-defined]
    before = {
        role: client.get(TUF + f"{role}.json").content
        for role in ("root", "targets", "snapshot", "timestamp")
    }
    entries = {"evil": tuf.target("sha256:" + "ee" * 32, 1)}
    if tampering == "bad signature":
        targets = repo.targets(entries, 2, signer=tuf.Key())
        files = {
            "targets": targets,
            "snapshot": repo.snapshot({"root": root, "targets": targets}, 2),
        }
    elif tampering == "rolled back":
        targets = repo.targets(entries, 1)
        files = {
            "targets": targets,
            "snapshot": repo.snapshot({"root": root, "targets": targets}, 2),
        }
    elif tampering == "snapshot mismatch":
        targets = repo.targets(entries, 2)
        other = repo.targets({}, 2)
        files = {"targets": targets, "snapshot": repo.snapshot({"root": root, "targets": other}, 2)}
    elif tampering == "not delegated":
        evil = repo.targets(entries, 1, role="targets/releases", signer=tuf.Key())
        evil = evil.replace(b'"Targets"', b'"Targets"')
        files = {"targets/releases": evil}
    else:
        stranger = tuf.Repository("registry.example:5000/other/app")
        stamp = client.get(TUF + "timestamp.key").json()
        new_root = stranger.root(stamp, version=2, signers=(stranger.root_key, repo.root_key))
        files = {"root": new_root}
    r = publish(client, files)
    assert r.status_code == 400, r.text
    assert error_code(r) == ("VERSION" if tampering == "rolled back" else "INVALID_UPDATE")
    after = {role: client.get(TUF + f"{role}.json").content for role in before}
    assert after == before


def test_delegated_signer_publishes_within_its_role(client) -> None:
    repo = initialised(client)
    root = repo.published["root"]  # type: ignore[attr-defined]
    releases = tuf.Key(common_name="releases")
    targets = repo.targets({}, 2, delegations={"targets/releases": releases})
    r = publish(
        client,
        {"targets": targets, "snapshot": repo.snapshot({"root": root, "targets": targets}, 2)},
    )
    assert r.status_code == 200, r.text
    signed = repo.targets(
        {"v1": tuf.target("sha256:" + "12" * 32, 3)}, 1, role="targets/releases", signer=releases
    )
    documents = {"root": root, "targets": targets, "targets/releases": signed}
    r = publish(client, {"targets/releases": signed, "snapshot": repo.snapshot(documents, 3)})
    assert r.status_code == 200, r.text
    assert "v1" in current(client, "targets/releases")["signed"]["targets"]


def test_malformed_uploads_get_notary_codes(client) -> None:
    initialised(client)
    assert error_code(publish(client, {"targets": b"{not json"})) == "MALFORMED_JSON"
    r = client.post(TUF, files=[("files", ("Targets/../x.json", b"{}"))])
    assert error_code(r) == "INVALID_ROLE"
    r = client.post(TUF, content=b"plain", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400
    assert error_code(client.get(f"/v2/{GUN}/_trust/tuf/nothing.json")) == "INVALID_ROLE"
    for bad in ("host:1/UPPER/app", "host:1/a/%2e%2e/b", "host:1"):
        r = client.get(f"/v2/{bad}/_trust/tuf/root.json")
        assert r.status_code == 400 and error_code(r) == "INVALID_GUN", bad


def test_rotating_a_key_keeps_signing_with_the_root_s_until_a_new_root_names_the_new_one(
    client,
) -> None:
    repo = initialised(client)
    old = client.get(TUF + "timestamp.key").json()
    new = client.post(TUF + "timestamp.key").json()
    assert new != old
    root = repo.published["root"]  # type: ignore[attr-defined]
    targets = repo.targets({}, 2)
    r = publish(
        client,
        {"targets": targets, "snapshot": repo.snapshot({"root": root, "targets": targets}, 2)},
    )
    assert r.status_code == 200
    assert current(client, "timestamp")["signatures"][0]["keyid"] == tuf.key_id(old)
    new_root = repo.root(new, version=2)
    r = publish(
        client,
        {"root": new_root, "snapshot": repo.snapshot({"root": new_root, "targets": targets}, 3)},
    )
    assert r.status_code == 200, r.text
    assert current(client, "timestamp")["signatures"][0]["keyid"] == tuf.key_id(new)
    assert client.get(TUF + "timestamp.key").json() == new


def push_image(client, name: str, tag: str, label: str) -> tuple[str, int]:
    blob = layer(label)
    config, manifest = image_of([blob], label=label)
    for b in (config, blob):
        r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": b.digest}, content=b.data)
        assert r.status_code == 201
    r = client.put(
        f"/v2/{name}/manifests/{tag}", content=manifest.data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201
    return manifest.digest, len(manifest.data)


def test_signed_only_policy_refuses_unsigned_and_moved_tags(signed_in) -> None:
    client = signed_in
    repo = initialised(client)
    signed_digest, size = push_image(client, "lib/app", "signed", "one")
    push_image(client, "lib/app", "unsigned", "two")
    root = repo.published["root"]  # type: ignore[attr-defined]
    targets = repo.targets({"signed": tuf.target(signed_digest, size)}, 2)
    r = publish(
        client,
        {"targets": targets, "snapshot": repo.snapshot({"root": root, "targets": targets}, 2)},
    )
    assert r.status_code == 200

    api = {"auth": ("admin", PASSWORD)}
    tags = client.get("/api/v0/repositories/lib/app/tags", **api).json()["tags"]
    status = {t["name"]: (t["signed"], t["signers"]) for t in tags}
    assert status == {"signed": (True, ["targets"]), "unsigned": (False, [])}

    policy = client.get("/api/v0/repositories/lib/app/policy", **api).json()
    policy["signing"] = {"signed_only": True, "accepted_signers": []}
    assert client.put("/api/v0/repositories/lib/app/policy", json=policy, **api).status_code == 200
    accept = {"Accept": OCI_MANIFEST}
    assert client.get("/v2/lib/app/manifests/signed", headers=accept).status_code == 200
    assert client.get(f"/v2/lib/app/manifests/{signed_digest}", headers=accept).status_code == 200
    r = client.get("/v2/lib/app/manifests/unsigned", headers=accept)
    assert r.status_code == 403 and error_code(r) == "DENIED"
    assert "no content-trust signature" in r.json()["errors"][0]["message"]

    # Moving the signed tag to another image voids its signature for pulls.
    push_image(client, "lib/app", "signed", "three")
    r = client.get("/v2/lib/app/manifests/signed", headers=accept)
    assert r.status_code == 403 and "moved after it was signed" in r.json()["errors"][0]["message"]

    # Only a named signer counts when the policy names one.
    policy["signing"] = {"signed_only": True, "accepted_signers": ["releases"]}
    saved = client.put("/api/v0/repositories/lib/app/policy", json=policy, **api).json()
    assert saved["signing"]["accepted_signers"] == ["targets/releases"]
    r = client.get(f"/v2/lib/app/manifests/{signed_digest}", headers=accept)
    assert r.status_code == 403

    audit = client.get("/api/v0/audit", **api).json()
    refused = [(e["reference"], e["user"]) for e in audit["refused_pulls"]]
    assert ("unsigned", "admin") in refused and (signed_digest, "admin") in refused
    changes = [c for c in audit["changes"] if c["action"] == "set_repository_policy"]
    assert changes[-1]["fields"]["policy"]["acceptedSigners"] == ["targets/releases"]
    publishes = [c for c in audit["changes"] if c["action"] == "publish_trust"]
    assert publishes[-1]["actor"] == "admin"
    assert publishes[-1]["fields"]["signers"][0].startswith("targets:")

    # Refused pulls and signing are events too (refusals are recorded in the background).
    def listed(kind: str) -> list[dict]:
        query = {"repository": "lib/app", "type": kind}
        return list(client.get("/api/v0/events", params=query, **api).json()["events"])

    deadline = time.monotonic() + 10
    while len(listed("refusal")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    refusals = listed("refusal")
    assert {(e["tag"], e["digest"] == signed_digest) for e in refusals} >= {
        ("unsigned", False), ("", True),
    }  # fmt: skip
    assert all(e["actor"] == "admin" and e["detail"]["reason"] for e in refusals)
    client.get("/v2/lib/app/manifests/unsigned", headers=accept)  # the same again: no event
    time.sleep(0.3)
    assert len(listed("refusal")) == len(refusals)
    assert [e["actor"] for e in listed("sign")] == ["admin", "admin"]  # init, then a target


def test_canonical_json_matches_notary_s() -> None:
    value = {"b": [1, 2.0, True, None], "a": 'q"\\<>&\n\u00e9', "é": {}}
    assert (
        canonical.encode(value) == '{"a":"q\\"\\\\<>&\n\u00e9","b":[1,2,true,null],"é":{}}'.encode()
    )
    with pytest.raises(canonical.NotCanonical):
        canonical.encode({"x": 1.5})
    # Raw control characters, as Go's canonical encoder writes them: lenient JSON.
    assert json.loads(canonical.encode(value), strict=False) == {**value, "b": [1, 2, True, None]}


def test_signatures_pushed_as_referrers_are_listed_beside_trust(signed_in) -> None:
    client = signed_in
    digest, size = push_image(client, "lib/app", "v1", "referred")
    empty = b"{}"
    r = client.post(
        "/v2/lib/app/blobs/uploads/",
        params={"digest": "sha256:" + hashlib.sha256(empty).hexdigest()},
        content=empty,
    )
    assert r.status_code == 201
    for artifact_type in (
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.cncf.notary.signature",
    ):
        signature = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": "sha256:" + hashlib.sha256(empty).hexdigest(),
                    "size": 2,
                },
                "layers": [],
                "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": size},
            }
        ).encode()
        reference = "sha256:" + hashlib.sha256(signature).hexdigest()
        r = client.put(
            f"/v2/lib/app/manifests/{reference}",
            content=signature,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code == 201, r.text
    tag = client.get("/api/v0/repositories/lib/app/tags/v1", auth=("admin", PASSWORD)).json()
    assert sorted(s["kind"] for s in tag["other_signatures"]) == ["cosign", "notation"]
    assert tag["signed"] is False  # referrers are listed, not verified: never "signed"


def test_an_upload_with_too_many_signatures_is_refused_before_verifying_them(client) -> None:
    repo = initialised(client)
    targets = json.loads(repo.targets({}, 2))
    targets["signatures"] = targets["signatures"] * 65
    r = publish(client, {"targets": json.dumps(targets).encode()})
    assert r.status_code == 400 and "at most 64 signatures" in r.json()["errors"][0]["message"]


def test_a_timestamp_close_to_expiring_is_signed_anew_when_read(client, monkeypatch) -> None:
    from replica.trust import service

    initialised(client)
    first = current(client, "timestamp")
    # Every timestamp lives 14 days: with a 30-day margin, every read finds it too old.
    monkeypatch.setattr(service, "_REFRESH_BEFORE", datetime.timedelta(days=30))
    fresh = current(client, "timestamp")
    assert fresh["signed"]["version"] == first["signed"]["version"] + 1
    assert fresh["signed"]["meta"] == first["signed"]["meta"]  # the same snapshot
    assert fresh["signatures"][0]["keyid"] == first["signatures"][0]["keyid"]
    feed = client.get(f"/v2/{GUN}/_trust/changefeed").json()["records"]
    assert [c["Version"] for c in feed][-2:] == [1, 2]


def test_the_change_feed_of_every_name_shows_only_what_the_caller_may_pull(signed_in) -> None:
    client = signed_in
    initialised(client)
    records = client.get("/v2/_trust/changefeed").json()["records"]
    assert [r["GUN"] for r in records] == [GUN]
    anonymous = client.get("/auth/token", params={"scope": "registry:catalog:*"}).json()
    seen = client.get(
        "/v2/_trust/changefeed",
        headers={"Authorization": f"Bearer {anonymous['token']}"},
    ).json()
    assert seen == {"count": 0, "records": []}  # lib/app is private
