"""Sign-in through a real directory: Debian's slapd over LDAPS with a test CA, a
three-replica cluster set up with `qreg auth`, directory users pushing and pulling with
skopeo under the laboratory's teams, the sync, a stopped directory and mode changes."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.directory import (
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    group_dn,
)
from tests.images import image_layout
from tests.qreg_cli import qreg

pytestmark = pytest.mark.slow

PEOPLE_PASSWORDS = {
    "gordon": "gordon-pw-1",
    "orca": "orca-pw-1",
    "moby": "moby-pw-1",
    "ahab": "ahab-pw-1",
}
DIRECTORY_GROUPS = {
    "registry-admins": ["gordon"],
    "core": ["gordon", "orca"],
    "frontend": ["gordon", "moby", "ahab"],
}


class Lab:
    def __init__(self, cluster: LocalCluster, slapd: Slapd, home: str) -> None:
        self.cluster = cluster
        self.slapd = slapd
        self.env = {**os.environ, "QREG_LOGIN_FILE": os.path.join(home, "login.json")}
        self.certs = os.path.join(home, "certs")
        os.makedirs(self.certs, exist_ok=True)
        shutil.copy(cluster.ca, os.path.join(self.certs, "ca.crt"))
        self.home = home
        self.admin = httpx.Client(
            base_url=cluster.url,
            verify=cluster.verify,
            timeout=30,
            auth=("admin", cluster.admin_password),
        )

    def qreg(self, *args: str, stdin: str = "", ok: bool = True) -> str:
        return qreg(*args, env=self.env, stdin=stdin, ok=ok)

    def token(
        self, user: str, repo: str, actions: str = "pull", replica: int = 0
    ) -> httpx.Response:
        return httpx.get(
            self.cluster.urls[replica] + "/auth/token",
            verify=self.cluster.verify,
            params={"service": "quorum-registry", "scope": f"repository:{repo}:{actions}"},
            auth=(user, PEOPLE_PASSWORDS.get(user, "")),
            timeout=30,
        )

    def tags(self, token: str, repo: str, replica: int = 0) -> int:
        return httpx.get(
            f"{self.cluster.urls[replica]}/v2/{repo}/tags/list",
            verify=self.cluster.verify,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        ).status_code

    def push(self, user: str | None, repo: str, tag: str = "1", replica: int = 0) -> None:
        layout, _ = image_layout(os.path.join(self.home, f"layout-{repo}-{tag}"), f"{repo}{tag}")
        creds = (
            ["--dest-creds", f"{user}:{PEOPLE_PASSWORDS[user]}"] if user else ["--dest-no-creds"]
        )
        host = self.cluster.urls[replica].split("://", 1)[1]
        skopeo("copy", "--dest-cert-dir", self.certs, *creds,
               f"oci:{layout}:latest", f"docker://{host}/{repo}:{tag}")  # fmt: skip

    def pull(self, user: str, repo: str, tag: str = "1") -> None:
        out = os.path.join(self.home, f"pulled-{user}-{repo.replace('/', '-')}-{tag}")
        shutil.rmtree(out, ignore_errors=True)
        skopeo("copy", "--src-cert-dir", self.certs,
               "--src-creds", f"{user}:{PEOPLE_PASSWORDS[user]}",
               f"docker://{self.cluster.host}/{repo}:{tag}", f"dir:{out}")  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    home = str(tmp_path_factory.mktemp("ldap"))
    slapd = Slapd(
        os.path.join(home, "slapd"), people=dict(PEOPLE_PASSWORDS), groups=DIRECTORY_GROUPS
    ).start()
    cluster = LocalCluster(os.path.join(home, "data"), replicas=3, tls=True).start()
    lab = Lab(cluster, slapd, home)
    try:
        lab.qreg("login", cluster.url, "-u", "admin", "--ca", cluster.ca, "--password-stdin",
                 stdin=cluster.admin_password + "\n")  # fmt: skip
        with open(os.path.join(home, "service-password"), "w") as f:
            f.write(SERVICE_PASSWORD + "\n")
        lab.qreg(
            "auth", "ldap", "set", "--url", slapd.url, "--ca-file", slapd.ca_file,
            "--bind-dn", SERVICE_DN,
            "--bind-password-file", os.path.join(home, "service-password"),
            "--user-base-dn", PEOPLE, "--user-filter", "(objectClass=inetOrgPerson)",
            "--username-attribute", "uid", "--admin-group-dn", group_dn("registry-admins"),
            "--keep-managed",
        )  # fmt: skip
        out = lab.qreg("auth", "ldap", "test", "--user", "orca", "--password-stdin",
                       stdin="orca-pw-1\n")  # fmt: skip
        assert "4 users" in out and "orca: password accepted" in out, out
        assert (
            lab.admin.post(
                "/api/v0/accounts", json={"name": "engineering", "is_org": True}
            ).status_code
            == 201
        )
        for team in ("core", "frontend"):
            assert (
                lab.admin.post(
                    "/api/v0/accounts/engineering/teams", json={"name": team}
                ).status_code
                == 201
            )
            lab.qreg("auth", "ldap", "team", "engineering", team, group_dn(team))
        for repo, team, access in [("barca", "core", "read-only"),
                                   ("madrid", "frontend", "read-write")]:  # fmt: skip
            r = lab.admin.post(
                "/api/v0/repositories/engineering", json={"name": repo, "visibility": "private"}
            )
            assert r.status_code == 201, r.text
            r = lab.admin.put(
                f"/api/v0/repositories/engineering/{repo}/teamAccess/{team}",
                json={"access": access},
            )
            assert r.status_code == 200, r.text
        out = lab.qreg("auth", "mode", "ldap")
        assert "mode: ldap" in out
        out = lab.qreg("auth", "ldap", "sync")
        assert "4 directory users" in out and "4 created" in out and "2 teams" in out, out
        yield lab
    finally:
        lab.admin.close()
        cluster.stop()
        slapd.stop()


def test_directory_users_sign_in_under_the_laboratorys_teams(lab: Lab) -> None:
    members = lab.admin.get("/api/v0/accounts/engineering/teams/frontend/members").json()
    assert sorted(m if isinstance(m, str) else m["name"] for m in members["members"]) == [
        "ahab", "gordon", "moby",
    ]  # fmt: skip
    lab.push("gordon", "engineering/barca")  # an administrator, from the admin group
    lab.pull("orca", "engineering/barca")  # core: read-only
    with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
        lab.push("orca", "engineering/barca", "2")
    lab.push("moby", "engineering/madrid", replica=2)  # frontend: read-write
    with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
        lab.push("ahab", "engineering/barca", "3")
    # A wrong password is refused; the bootstrap admin, a managed account, still signs in.
    r = httpx.get(lab.cluster.url + "/auth/token", verify=lab.cluster.verify,
                  auth=("moby", "not-mobys-password"))  # fmt: skip
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert lab.admin.get("/api/v0/auth/settings").json()["mode"] == "ldap"
    gordon = httpx.get(lab.cluster.urls[1] + "/api/v0/auth/settings", verify=lab.cluster.verify,
                       auth=("gordon", PEOPLE_PASSWORDS["gordon"]))  # fmt: skip
    assert gordon.status_code == 200 and gordon.json()["ldap"]["bind_password_set"]
    assert SERVICE_PASSWORD not in gordon.text
    accounts = {a["name"]: a for a in lab.admin.get("/api/v0/accounts").json()["accounts"]}
    assert accounts["gordon"]["global_role"] == "admin"
    assert accounts["orca"]["global_role"] == "none"


def test_the_sync_follows_the_directory(lab: Lab) -> None:
    ahab = lab.token("ahab", "engineering/madrid").json()["token"]
    assert lab.tags(ahab, "engineering/madrid", replica=1) == 200
    lab.slapd.remove_person("ahab")
    lab.slapd.add_person("carol", "carol-pw-1")
    PEOPLE_PASSWORDS["carol"] = "carol-pw-1"
    lab.slapd.set_members("frontend", ["gordon", "moby", "carol"])
    out = lab.qreg("auth", "ldap", "sync")
    assert "1 created" in out and "1 deactivated" in out and "deactivated: ahab" in out, out
    for replica in range(3):  # the token stops at once, everywhere
        assert lab.tags(ahab, "engineering/madrid", replica) == 401
    assert lab.token("ahab", "engineering/madrid").status_code == 401
    members = lab.admin.get("/api/v0/accounts/engineering/teams/frontend/members").json()
    names = sorted(m if isinstance(m, str) else m["name"] for m in members["members"])
    assert names == ["carol", "gordon", "moby"]
    lab.push("carol", "engineering/madrid", "carol")
    # Back in the directory: active again, but the old token stays void.
    lab.slapd.add_person("ahab", PEOPLE_PASSWORDS["ahab"])
    assert "reactivated: ahab" in lab.qreg("auth", "ldap", "sync")
    assert lab.tags(ahab, "engineering/madrid") == 401
    assert lab.token("ahab", "engineering/madrid").status_code == 200
    audit = lab.admin.get("/api/v0/audit").json()
    assert any(e["action"] == "sync_directory" for e in audit["changes"])
    assert any(e["action"] == "set_auth_settings" for e in audit["changes"])
    assert SERVICE_PASSWORD not in str(audit)


def test_a_stopped_directory_keeps_tokens_and_refuses_logins_clearly(lab: Lab) -> None:
    moby = lab.token("moby", "engineering/madrid").json()["token"]
    lab.slapd.stop()
    try:
        assert lab.tags(moby, "engineering/madrid", replica=2) == 200
        r = lab.token("moby", "engineering/madrid")
        assert r.status_code == 503, r.text
        error = r.json()["errors"][0]
        assert error["code"] == "UNAVAILABLE" and "directory" in error["message"]
        out = lab.qreg("auth", "ldap", "sync", ok=False)
        assert "cannot reach" in out, out
        # The bootstrap admin is managed: it signs in without the directory.
        assert lab.admin.get("/api/v0/auth/settings").status_code == 200
    finally:
        lab.slapd.start()
    deadline = time.monotonic() + 20
    while lab.token("moby", "engineering/madrid").status_code != 200:
        assert time.monotonic() < deadline, "logins did not come back with the directory"
        time.sleep(0.5)
    assert "0 created" in lab.qreg("auth", "ldap", "sync")


def test_switching_modes_applies_on_every_replica(lab: Lab) -> None:
    repo = "engineering/madrid"
    try:
        assert "warning" in lab.qreg("auth", "mode", "none")
        for replica in range(3):
            assert lab.tags("", repo, replica) == 200, replica
        lab.push(None, repo, "anonymous", replica=1)
        home = httpx.get(lab.cluster.urls[2] + "/", verify=lab.cluster.verify,
                         follow_redirects=True)  # fmt: skip
        assert "no sign-in" in home.text.lower()
        lab.qreg("auth", "mode", "managed")
        for replica in range(3):
            assert lab.tags("", repo, replica) == 401, replica
        # Managed mode: directory accounts have no password here.
        assert lab.token("moby", repo).status_code == 401
    finally:
        lab.qreg("auth", "mode", "ldap")
    assert lab.token("moby", repo).status_code == 200


def test_the_directory_never_takes_over_a_managed_account_nor_empties_the_registry(
    lab: Lab,
) -> None:
    lab.slapd.add_person("admin", "directory-admin-pw")
    # A token for the management API: gordon's own sign-in needs the directory's base DN,
    # which this test breaks on purpose.
    token = httpx.get(lab.cluster.urls[1] + "/auth/token", verify=lab.cluster.verify,
                      params={"service": "quorum-registry", "scope": "registry:api:*"},
                      auth=("gordon", PEOPLE_PASSWORDS["gordon"])).json()["token"]  # fmt: skip
    gordon = httpx.Client(base_url=lab.cluster.urls[1], verify=lab.cluster.verify, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    try:
        impostor = ("admin", "directory-admin-pw")
        r = httpx.get(lab.cluster.url + "/auth/token", verify=lab.cluster.verify, auth=impostor)
        assert r.status_code == 401
        # Without keep_managed the bootstrap admin cannot sign in, and still the
        # directory's "admin" is not the cluster's.
        assert gordon.put("/api/v0/auth/ldap", json={"keep_managed": False}).status_code == 200
        r = httpx.get(lab.cluster.url + "/auth/token", verify=lab.cluster.verify, auth=impostor)
        assert r.status_code == 401
        assert lab.admin.get("/api/v0/auth/settings").status_code == 401
        # A wrong base DN finds nobody: the sync refuses to deactivate everyone.
        r = gordon.put("/api/v0/auth/ldap", json={"user_base_dn": "ou=nowhere,dc=example,dc=org"})
        assert r.status_code == 200
        r = gordon.post("/api/v0/auth/ldap/sync")
        assert r.status_code == 503 and "returned no users" in r.text, r.text
        assert lab.token("moby", "engineering/madrid").status_code == 401  # not found now
    finally:
        r = gordon.put("/api/v0/auth/ldap", json={"keep_managed": True, "user_base_dn": PEOPLE})
        assert r.status_code == 200, r.text
        gordon.close()
        lab.slapd.remove_person("admin")
    accounts = {a["name"]: a for a in lab.admin.get("/api/v0/accounts").json()["accounts"]}
    assert accounts["moby"]["active"] and accounts["admin"]["source"] == "managed"
    assert lab.token("moby", "engineering/madrid").status_code == 200
