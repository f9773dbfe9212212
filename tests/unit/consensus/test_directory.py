"""Authentication settings and directory accounts in the state machine."""

from __future__ import annotations

import pytest

from consensus import accounts, directory
from proto import commands_pb2 as pb
from tests.unit.consensus.test_accounts import Cluster


@pytest.fixture
def cluster(tmp_path) -> Cluster:
    c = Cluster(str(tmp_path / "state"))
    c.ok(put_account=pb.PutAccount(name="admin", password_hash="h", global_role="admin"))
    c.ok(put_account=pb.PutAccount(name="eng", is_org=True))
    c.ok(put_team=pb.PutTeam(org="eng", team="devs"))
    return c


def _user(name: str, active: bool = True, admin: bool = False) -> pb.DirectoryUser:
    return pb.DirectoryUser(
        name=name, dn=f"uid={name},ou=people", active=active, set_role=True, admin=admin
    )


def test_settings_change_by_revision_and_refuse_what_cannot_work(cluster: Cluster) -> None:
    assert cluster.state.view(directory.settings).mode == "managed"
    wanted = pb.AuthSettings(mode="none")
    cluster.ok(set_auth_settings=pb.SetAuthSettings(settings=wanted, expected_revision=0))
    assert cluster.state.view(directory.settings).revision == 1
    stale = cluster.apply(set_auth_settings=pb.SetAuthSettings(settings=wanted))
    assert stale.error_code == "CONFLICT"
    bad = pb.SetAuthSettings(settings=pb.AuthSettings(mode="ldap"), expected_revision=1)
    assert cluster.apply(set_auth_settings=bad).error_code == "INVALID_INPUT"  # no directory
    odd = pb.SetAuthSettings(settings=pb.AuthSettings(mode="open"), expected_revision=1)
    assert cluster.apply(set_auth_settings=odd).error_code == "INVALID_INPUT"


def test_a_sync_creates_deactivates_and_never_touches_managed_accounts(cluster: Cluster) -> None:
    result = cluster.apply(
        at_ms=1000,
        sync_directory=pb.SyncDirectory(
            users=[_user("alice", admin=True), _user("bob"), _user("admin"), _user("eng")],
            at_ms=1000,
        ),
    )
    assert "admin, eng" in result.message  # a managed account and an organization: left
    alice = cluster.state.view(accounts.account, "alice")
    assert alice.source == "ldap" and alice.global_role == "admin" and not alice.password_hash
    assert cluster.state.view(accounts.account, "admin").source == ""
    cluster.ok(sync_directory=pb.SyncDirectory(users=[_user("bob", active=False)], at_ms=2000))
    bob = cluster.state.view(accounts.account, "bob")
    assert bob.deactivated and bob.password_changed_ms == 2000  # tokens before it are void
    cluster.ok(sync_directory=pb.SyncDirectory(users=[_user("bob")], at_ms=3000))
    bob = cluster.state.view(accounts.account, "bob")
    assert not bob.deactivated and bob.password_changed_ms == 2000
    # Deactivating someone the state never had creates nothing.
    cluster.ok(sync_directory=pb.SyncDirectory(users=[_user("zed", active=False)], at_ms=4000))
    assert cluster.state.view(accounts.account, "zed") is None


def test_a_team_follows_its_group_for_directory_accounts_only(cluster: Cluster) -> None:
    cluster.ok(sync_directory=pb.SyncDirectory(users=[_user("alice"), _user("bob")], at_ms=1))
    cluster.ok(set_team_member=pb.SetTeamMember(org="eng", team="devs", user="admin", member=True))
    cluster.ok(set_team_member=pb.SetTeamMember(org="eng", team="devs", user="bob", member=True))
    group = pb.SetTeamDirectoryGroup(org="eng", team="devs", group_dn="cn=devs")
    cluster.ok(set_team_directory_group=group)
    assert cluster.state.view(directory.team_groups) == [("eng", "devs", "cn=devs")]
    team = pb.DirectoryTeam(org="eng", team="devs", members=["alice"])
    cluster.ok(sync_directory=pb.SyncDirectory(teams=[team], at_ms=2))
    # bob (directory) left with the group; admin (managed, added by hand) stays.
    assert cluster.state.view(accounts.team_members, "eng", "devs") == ["admin", "alice"]
    assert cluster.state.view(accounts.memberships, "bob") == []
    missing = pb.SetTeamDirectoryGroup(org="eng", team="nope", group_dn="cn=x")
    assert cluster.apply(set_team_directory_group=missing).error_code == "NOT_FOUND"


def test_the_audit_keeps_no_bind_password_and_summarises_syncs(cluster: Cluster) -> None:
    settings = pb.AuthSettings(
        ldap=pb.LdapSettings(url="ldaps://x", user_base_dn="o=x", sealed_bind_password=b"SEALED")
    )
    cluster.ok(actor="admin", set_auth_settings=pb.SetAuthSettings(settings=settings))
    users = [_user(f"u{n}") for n in range(300)] + [_user("gone", active=False)]
    cluster.ok(actor="admin", sync_directory=pb.SyncDirectory(users=users, at_ms=5))
    entries = cluster.state.view(accounts.audit_latest, 2)
    assert entries[0]["fields"] == {"users": 301, "deactivated": ["gone"], "teams": []}
    assert "sealedBindPassword" not in str(entries[1]) and "U0VBTEVE" not in str(entries[1])
