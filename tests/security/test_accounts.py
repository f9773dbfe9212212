"""Accounts and Docker token auth end to end: the laboratory scenario with skopeo over
HTTPS with the cluster CA, then the token edge cases."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from replica import pki
from replica.auth.tokens import TokenKeys
from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cluster = LocalCluster(str(tmp_path_factory.mktemp("lab") / "data"), replicas=2, tls=True)
    cluster.start()
    admin = httpx.Client(
        base_url=cluster.url,
        verify=cluster.verify,
        timeout=30,
        auth=("admin", cluster.admin_password),
    )
    try:
        for user, role in [
            ("gordon", "admin"),
            ("orca", "read-write"),
            ("moby", "read-only"),
            ("ahab", "none"),
        ]:
            r = admin.post(
                "/api/v0/accounts", json={"name": user, "password": PASSWORD, "global_role": role}
            )
            assert r.status_code == 201, r.text
        assert (
            admin.post("/api/v0/accounts", json={"name": "engineering", "is_org": True}).status_code
            == 201
        )
        for team, members in [
            ("core", ["gordon", "orca"]),
            ("frontend", ["gordon", "moby", "ahab"]),
        ]:
            assert (
                admin.post("/api/v0/accounts/engineering/teams", json={"name": team}).status_code
                == 201
            )
            for member in members:
                r = admin.put(f"/api/v0/accounts/engineering/teams/{team}/members/{member}")
                assert r.status_code == 204, r.text
        for repo, team, access in [
            ("barca", "core", "read-only"),
            ("madrid", "frontend", "read-write"),
        ]:
            r = admin.post(
                "/api/v0/repositories/engineering", json={"name": repo, "visibility": "private"}
            )
            assert r.status_code == 201, r.text
            r = admin.put(
                f"/api/v0/repositories/engineering/{repo}/teamAccess/{team}",
                json={"access": access},
            )
            assert r.status_code == 200, r.text
        r = admin.post(
            "/api/v0/repositories/engineering", json={"name": "public", "visibility": "public"}
        )
        assert r.status_code == 201
        yield cluster
    finally:
        admin.close()
        cluster.stop()


def _certs(cluster: LocalCluster, tmp_path) -> str:
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(cluster.ca, certs / "ca.crt")
    return str(certs)


def _push(cluster: LocalCluster, tmp_path, user: str | None, repo: str, tag: str = "1") -> None:
    layout, _ = image_layout(str(tmp_path / f"layout-{tag}"), f"{repo}-{tag}", layers=1)
    creds = ["--dest-creds", f"{user}:{PASSWORD}"] if user else ["--dest-no-creds"]
    skopeo(
        "copy",
        "--dest-cert-dir",
        _certs(cluster, tmp_path),
        *creds,
        f"oci:{layout}:latest",
        f"docker://{cluster.host}/engineering/{repo}:{tag}",
    )


def _pull(cluster: LocalCluster, tmp_path, user: str | None, repo: str, tag: str = "1") -> dict:
    out = tmp_path / f"pulled-{user}-{repo}-{tag}"
    creds = ["--src-creds", f"{user}:{PASSWORD}"] if user else ["--src-no-creds"]
    skopeo(
        "copy",
        "--src-cert-dir",
        _certs(cluster, tmp_path),
        *creds,
        f"docker://{cluster.host}/engineering/{repo}:{tag}",
        f"dir:{out}",
    )
    return dir_digests(str(out))


def test_the_laboratory_with_skopeo(lab: LocalCluster, tmp_path) -> None:
    _push(lab, tmp_path, "orca", "barca")  # read-write on all
    assert "manifest.json" in _pull(lab, tmp_path, "moby", "barca")  # read-only on all
    with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
        _push(lab, tmp_path, "moby", "barca", "2")
    _push(lab, tmp_path, "ahab", "madrid")  # frontend: read-write
    with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
        _push(lab, tmp_path, "ahab", "barca", "3")
    with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
        _pull(lab, tmp_path, None, "barca")  # anonymous, private
    _push(lab, tmp_path, "gordon", "public")
    assert "manifest.json" in _pull(lab, tmp_path, None, "public")  # anonymous, public
    # ahab sees only what he may read, in the API and in the catalog.
    r = httpx.get(lab.url + "/api/v0/repositories", auth=("ahab", PASSWORD), verify=lab.verify)
    assert {x["name"] for x in r.json()["repositories"]} == {
        "engineering/madrid",
        "engineering/public",
    }
    token = httpx.get(
        lab.url + "/auth/token",
        params={"scope": "registry:catalog:*"},
        auth=("ahab", PASSWORD),
        verify=lab.verify,
    ).json()["token"]
    r = httpx.get(
        lab.url + "/v2/_catalog", headers={"Authorization": f"Bearer {token}"}, verify=lab.verify
    )
    assert set(r.json()["repositories"]) == {"engineering/madrid", "engineering/public"}
    # Another replica honours the same accounts and tokens.
    r = httpx.get(
        lab.urls[1] + "/v2/engineering/madrid/tags/list",
        verify=lab.verify,
        headers={"Authorization": f"Bearer {_token(lab, 'ahab', 'engineering/madrid')}"},
    )
    assert r.json()["tags"] == ["1"]


def _token(
    cluster: LocalCluster,
    user: str | None,
    repo: str,
    actions: str = "pull",
    password: str = PASSWORD,
) -> str:
    r = httpx.get(
        cluster.url + "/auth/token",
        verify=cluster.verify,
        params={"service": "quorum-registry", "scope": f"repository:{repo}:{actions}"},
        auth=(user, password) if user else None,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _tags(
    cluster: LocalCluster, token: str, repo: str = "engineering/madrid", replica: int = 0
) -> httpx.Response:
    return httpx.get(
        f"{cluster.urls[replica]}/v2/{repo}/tags/list",
        verify=cluster.verify,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_challenge_and_a_token_for_what_was_asked_and_allowed(lab: LocalCluster) -> None:
    r = httpx.get(lab.url + "/v2/engineering/madrid/tags/list", verify=lab.verify)
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="https://') and "/auth/token" in challenge
    assert 'service="quorum-registry"' in challenge
    assert 'scope="repository:engineering/madrid:pull"' in challenge
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    # A token for one repository does not open another.
    token = _token(lab, "ahab", "engineering/madrid")
    assert _tags(lab, token).status_code == 200
    assert _tags(lab, token, "engineering/public").status_code == 401
    # Asking for more than allowed gets the intersection: no push on barca for ahab.
    token = _token(lab, "ahab", "engineering/barca", "pull,push")
    r = httpx.post(
        lab.url + "/v2/engineering/barca/blobs/uploads/",
        verify=lab.verify,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_forged_expired_and_foreign_tokens_are_refused(lab: LocalCluster) -> None:
    files = pki.TlsFiles.under(os.path.join(lab.data, "replica-0"))
    ca, key = Path(files.ca).read_bytes(), Path(files.ca_key).read_bytes()
    access = [{"type": "repository", "name": "engineering/madrid", "actions": ["pull"]}]
    genuine = TokenKeys(key, ca, "quorum-registry")
    assert _tags(lab, genuine.issue("ahab", access)).status_code == 200
    expired = genuine.issue("ahab", access, now=time.time() - 3600)
    other_ca, other_key = pki.create_ca("Somebody else")
    forged = TokenKeys(other_key, other_ca, "quorum-registry").issue("ahab", access)
    wrong_audience = TokenKeys(key, ca, "another-registry").issue("ahab", access)
    # The client widens its own token: the signature no longer matches.
    header, payload, signature = genuine.issue("ahab", access).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["access"][0]["name"] = "engineering/barca"
    widened = ".".join(
        [
            header,
            base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="),
            signature,
        ]
    )
    for token in (expired, forged, wrong_audience, widened, "not-a-token"):
        r = _tags(lab, token)
        assert r.status_code == 401, token
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_password_change_and_revoked_personal_tokens_void_earlier_tokens(lab: LocalCluster) -> None:
    admin = ("admin", lab.admin_password)
    r = httpx.post(
        lab.url + "/api/v0/accounts",
        auth=admin,
        verify=lab.verify,
        json={"name": "ci-bot", "password": PASSWORD, "global_role": "read-only"},
    )
    assert r.status_code == 201
    before = _token(lab, "ci-bot", "engineering/madrid")
    for replica in (0, 1, 0, 1):  # each replica checks it once, then keeps the claims
        assert _tags(lab, before, replica=replica).status_code == 200
    r = httpx.patch(
        lab.url + "/api/v0/accounts/ci-bot",
        auth=("ci-bot", PASSWORD),
        verify=lab.verify,
        json={"password": "a brand new one", "current_password": PASSWORD},
    )
    assert r.status_code == 200
    assert _tags(lab, before).status_code == 401  # issued before the change
    _voided_on_the_other_replica(lab, before)
    assert (
        _tags(
            lab, _token(lab, "ci-bot", "engineering/madrid", password="a brand new one")
        ).status_code
        == 200
    )
    # A personal access token works as the password, until revoked.
    r = httpx.post(
        lab.url + "/api/v0/accounts/ci-bot/tokens",
        auth=("ci-bot", "a brand new one"),
        verify=lab.verify,
        json={"name": "pipeline", "expires_in_days": 30},
    )
    assert r.status_code == 201
    pat, pat_id = r.json()["token"], r.json()["id"]
    from_pat = _token(lab, "ci-bot", "engineering/madrid", password=pat)
    assert _tags(lab, from_pat).status_code == 200
    assert _tags(lab, from_pat, replica=1).status_code == 200
    r = httpx.delete(
        f"{lab.url}/api/v0/accounts/ci-bot/tokens/{pat_id}", auth=admin, verify=lab.verify
    )
    assert r.status_code == 204
    assert _tags(lab, from_pat).status_code == 401
    _voided_on_the_other_replica(lab, from_pat)
    r = httpx.get(lab.url + "/auth/token", auth=("ci-bot", pat), verify=lab.verify)
    assert r.status_code == 401
    # A failed login on the other replica.
    assert (
        httpx.get(
            lab.urls[1] + "/auth/token", auth=("orca", "not-it"), verify=lab.verify
        ).status_code
        == 401
    )
    # Every change is in the audit log, with who made it; failed logins from every replica.
    changes = httpx.get(lab.url + "/api/v0/audit", auth=admin, verify=lab.verify).json()
    assert {"user": "orca", "replica": "replica-1"}.items() <= changes["failed_logins"][-1].items()
    revoked = [c for c in changes["changes"] if c["action"] == "revoke_access_token"]
    assert revoked and revoked[-1]["actor"] == "admin"
    assert any(f["user"] == "ci-bot" for f in changes["failed_logins"])


def _voided_on_the_other_replica(lab: LocalCluster, token: str) -> None:
    """Refused on replica 1 too, once it has applied the change (it kept the token's
    claims from before: the change must reach that cache)."""
    deadline = time.monotonic() + 10
    while _tags(lab, token, replica=1).status_code != 401:
        assert time.monotonic() < deadline, "replica 1 still accepts a voided token"
        time.sleep(0.05)


def test_docker_login_grants_and_size_limits(lab: LocalCluster) -> None:
    # docker login: the OAuth2 password grant with offline access gives a refresh token,
    # which the refresh grant trades for access tokens.
    r = httpx.post(
        lab.url + "/auth/token",
        verify=lab.verify,
        data={
            "grant_type": "password",
            "username": "ahab",
            "password": PASSWORD,
            "service": "quorum-registry",
            "client_id": "docker",
            "access_type": "offline",
            "scope": "repository:engineering/madrid:pull",
        },
    )
    assert r.status_code == 200, r.text
    refresh = r.json()["refresh_token"]
    assert _tags(lab, r.json()["access_token"]).status_code == 200
    r = httpx.post(
        lab.url + "/auth/token",
        verify=lab.verify,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "quorum-registry",
            "client_id": "docker",
            "scope": "repository:engineering/madrid:pull",
        },
    )
    assert r.status_code == 200 and _tags(lab, r.json()["access_token"]).status_code == 200
    # A refresh token is not an access token, nor the reverse.
    assert _tags(lab, refresh).status_code == 401
    r = httpx.post(
        lab.url + "/auth/token",
        verify=lab.verify,
        data={
            "grant_type": "refresh_token",
            "refresh_token": r.json()["access_token"],
            "service": "quorum-registry",
        },
    )
    assert r.status_code == 401
    # Oversized bodies are refused before they are parsed.
    r = httpx.post(
        lab.url + "/auth/token",
        verify=lab.verify,
        data={"grant_type": "password", "username": "x" * (1 << 20)},
    )
    assert r.status_code == 413
    r = httpx.post(
        lab.url + "/api/v0/accounts",
        auth=("admin", lab.admin_password),
        verify=lab.verify,
        json={"name": "big", "password": "p" * (1 << 20)},
    )
    assert r.status_code == 413
    r = httpx.post(
        lab.url + "/api/v0/accounts",
        auth=("admin", lab.admin_password),
        verify=lab.verify,
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "INVALID_INPUT"
    # The management API describes itself.
    document = httpx.get(lab.url + "/api/v0/openapi.json", verify=lab.verify).json()
    assert "/api/v0/repositories/{namespace}/{repo}/teamAccess/{team}" in document["paths"]


# Last: it locks 127.0.0.1 out of logins for a minute.
def test_repeated_failed_logins_are_slowed_down(lab: LocalCluster) -> None:
    statuses = [
        httpx.get(
            lab.url + "/auth/token", auth=("moby", f"wrong-{i}"), verify=lab.verify
        ).status_code
        for i in range(6)
    ]
    # The address 127.0.0.1 may already have failures from earlier tests: at most five
    # refusals, then 429.
    first = statuses.index(429)
    assert 1 <= first <= 5 and statuses[:first] == [401] * first, statuses
    r = httpx.get(lab.url + "/auth/token", auth=("moby", PASSWORD), verify=lab.verify)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
