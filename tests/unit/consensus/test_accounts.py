"""Accounts in the state machine, and the permissions they give (the laboratory scenario)."""

from __future__ import annotations

import itertools

import pytest

from consensus import MetadataState, accounts
from proto import commands_pb2 as pb
from replica.auth import permissions


class Cluster:
    """Applies commands in order, as Raft would."""

    def __init__(self, path: str) -> None:
        self.state = MetadataState(path)
        self._index = itertools.count(1)

    def apply(self, **command: object) -> pb.Result:
        return pb.Result.FromString(
            self.state.apply(next(self._index), pb.Command(**command).SerializeToString())
        )

    def ok(self, **command: object) -> None:
        result = self.apply(**command)
        assert not result.error_code, result.message

    def may(self, user: str | None, repository: str) -> frozenset[str]:
        return self.state.view(permissions.actions, user, repository)


@pytest.fixture
def lab(tmp_path) -> Cluster:
    c = Cluster(str(tmp_path / "state"))
    for user, role in [
        ("gordon", "admin"),
        ("orca", "read-write"),
        ("moby", "read-only"),
        ("ahab", ""),
    ]:
        c.ok(
            put_account=pb.PutAccount(
                name=user,
                password_hash="x",
                global_role=role,
                set_role=True,
                create_only=True,
                at_ms=1,
            )
        )
    c.ok(put_account=pb.PutAccount(name="engineering", is_org=True, create_only=True))
    for team, members in [("core", ["gordon", "orca"]), ("frontend", ["gordon", "moby", "ahab"])]:
        c.ok(put_team=pb.PutTeam(org="engineering", team=team, create_only=True))
        for member in members:
            c.ok(
                set_team_member=pb.SetTeamMember(
                    org="engineering", team=team, user=member, member=True
                )
            )
    for repo, team, access in [
        ("engineering/barca", "core", "read-only"),
        ("engineering/madrid", "frontend", "read-write"),
    ]:
        c.ok(
            put_repository=pb.PutRepository(repository=repo, visibility="private", create_only=True)
        )
        c.ok(
            set_team_access=pb.SetTeamAccess(
                repository=repo, org="engineering", team=team, access=access
            )
        )
    return c


def test_the_laboratory(lab: Cluster) -> None:
    assert {"pull", "push", "delete"} <= lab.may("gordon", "engineering/barca")
    assert "push" in lab.may("orca", "engineering/barca")  # read-write on all
    assert lab.may("moby", "engineering/barca") == {"pull"}  # read-only on all
    assert "push" in lab.may("ahab", "engineering/madrid")  # frontend: read-write
    assert lab.may("ahab", "engineering/barca") == frozenset()  # not in core
    assert lab.may(None, "engineering/barca") == frozenset()  # private
    assert lab.may("ahab", "ahab/tools") == permissions.ALL  # his own namespace
    assert lab.may("ahab", "orca/tools") == frozenset()


def test_visibility_and_owners(lab: Cluster) -> None:
    lab.ok(put_repository=pb.PutRepository(repository="engineering/public", visibility="public"))
    assert lab.may(None, "engineering/public") == {"pull"}
    assert lab.may("ahab", "engineering/public") == {"pull"}
    lab.ok(
        set_team_member=pb.SetTeamMember(org="engineering", team="owners", user="ahab", member=True)
    )
    assert lab.may("ahab", "engineering/barca") == permissions.ALL
    assert lab.state.view(permissions.manages_org, "ahab", "engineering")
    assert not lab.state.view(permissions.manages_org, "moby", "engineering")


def test_errors_and_deletes(lab: Cluster) -> None:
    again = lab.apply(put_account=pb.PutAccount(name="moby", create_only=True))
    assert again.error_code == "ALREADY_EXISTS"
    assert lab.apply(put_team=pb.PutTeam(org="nope", team="x")).error_code == "NOT_FOUND"
    wrong = lab.apply(
        set_team_access=pb.SetTeamAccess(
            repository="other/repo", org="engineering", team="core", access="admin"
        )
    )
    assert wrong.error_code == "INVALID_INPUT"
    assert lab.apply(delete_team=pb.DeleteTeam(org="engineering", team="owners")).error_code
    lab.ok(delete_team=pb.DeleteTeam(org="engineering", team="frontend"))
    assert lab.may("ahab", "engineering/madrid") == frozenset()
    assert ("engineering", "frontend") not in lab.state.view(accounts.memberships, "moby")
    lab.ok(delete_account=pb.DeleteAccount(name="orca"))
    assert lab.state.view(accounts.team_members, "engineering", "core") == ["gordon"]
    assert lab.may("orca", "engineering/barca") == frozenset()


def test_password_change_time_and_tokens(lab: Cluster) -> None:
    lab.ok(put_account=pb.PutAccount(name="moby", password_hash="y", at_ms=5000))
    moby = lab.state.view(accounts.account, "moby")
    assert moby.password_changed_ms == 5000 and moby.global_role == "read-only"  # role kept
    lab.ok(
        put_access_token=pb.PutAccessToken(
            user="moby", token_id="abc", name="ci", secret_hash="h", created_ms=1
        )
    )
    assert [t.name for t in lab.state.view(accounts.access_tokens, "moby")] == ["ci"]
    lab.ok(revoke_access_token=pb.RevokeAccessToken(user="moby", token_id="abc"))
    assert lab.state.view(accounts.access_token, "moby", "abc") is None


def test_every_account_change_is_in_the_audit_log(lab: Cluster) -> None:
    lab.ok(
        put_account=pb.PutAccount(name="moby", password_hash="secret-hash", at_ms=9),
        actor="gordon",
        at_ms=9,
    )
    refused = lab.apply(put_team=pb.PutTeam(org="nope", team="x"), actor="ahab")
    entries = lab.state.view(accounts.audit_log, 0, 1000)
    assert len(entries) == 16 + 2  # the lab (4 users, 1 org, 2 teams, 5 members, 2 repos, 2 grants)
    change, failure = entries[-2], entries[-1]
    assert change["actor"] == "gordon" and change["action"] == "put_account"
    assert "secret-hash" not in str(change)  # hashes stay out of the log
    assert failure["actor"] == "ahab" and failure["error"] == refused.error_code == "NOT_FOUND"
    assert lab.state.view(accounts.audit_log, entries[-2]["index"], 10) == [failure]


def test_a_recreated_team_does_not_inherit_its_predecessors_grants(lab: Cluster) -> None:
    lab.ok(delete_team=pb.DeleteTeam(org="engineering", team="frontend"))
    assert lab.state.view(accounts.team_access, "engineering/madrid") == {}
    lab.ok(put_team=pb.PutTeam(org="engineering", team="frontend", create_only=True))
    lab.ok(
        set_team_member=pb.SetTeamMember(
            org="engineering", team="frontend", user="ahab", member=True
        )
    )
    assert lab.may("ahab", "engineering/madrid") == frozenset()


def test_an_organization_with_repositories_cannot_be_deleted(lab: Cluster) -> None:
    refused = lab.apply(delete_account=pb.DeleteAccount(name="engineering"))
    assert refused.error_code == "DENIED" and "repositories" in refused.message
    assert lab.state.view(accounts.account, "engineering") is not None
    for repo in ("engineering/barca", "engineering/madrid"):
        lab.ok(delete_repository=pb.DeleteRepository(repository=repo))
    # A grant on a repository that does not exist yet must not survive either.
    lab.ok(
        set_team_access=pb.SetTeamAccess(
            repository="engineering/later", org="engineering", team="core", access="admin"
        )
    )
    lab.ok(delete_account=pb.DeleteAccount(name="engineering"))
    lab.ok(put_account=pb.PutAccount(name="engineering", is_org=True, create_only=True))
    lab.ok(put_team=pb.PutTeam(org="engineering", team="core", create_only=True))
    lab.ok(
        set_team_member=pb.SetTeamMember(org="engineering", team="core", user="ahab", member=True)
    )
    assert lab.state.view(accounts.team_access, "engineering/later") == {}
    assert lab.state.view(accounts.teams, "engineering") == ["core", "owners"]
    assert lab.may("ahab", "engineering/later") == frozenset()


def test_a_password_change_revokes_access_tokens_unless_kept(lab: Cluster) -> None:
    for token_id in ("aaa", "bbb"):
        lab.ok(
            put_access_token=pb.PutAccessToken(
                user="moby", token_id=token_id, name=token_id, secret_hash="h", created_ms=1
            )
        )
    lab.ok(
        put_account=pb.PutAccount(
            name="moby", password_hash="new", at_ms=2, keep_access_tokens=True
        )
    )
    assert len(lab.state.view(accounts.access_tokens, "moby")) == 2
    lab.ok(put_account=pb.PutAccount(name="moby", password_hash="newer", at_ms=3))
    assert lab.state.view(accounts.access_tokens, "moby") == []


def test_the_first_admin_is_created_once_per_cluster(tmp_path) -> None:
    c = Cluster(str(tmp_path / "state"))
    admin = pb.PutAccount(
        name="admin",
        password_hash="x",
        global_role="admin",
        set_role=True,
        create_only=True,
        bootstrap=True,
    )
    c.ok(put_account=admin)
    c.ok(delete_account=pb.DeleteAccount(name="admin"))
    # Every later start proposes the same command: it never brings the admin back.
    assert c.apply(put_account=admin).error_code == "ALREADY_EXISTS"
    assert c.state.view(accounts.account, "admin") is None


def test_a_cluster_from_before_the_bootstrap_marker_counts_as_bootstrapped(lab: Cluster) -> None:
    admin = pb.PutAccount(name="admin", password_hash="x", create_only=True, bootstrap=True)
    assert lab.apply(put_account=admin).error_code == "ALREADY_EXISTS"
