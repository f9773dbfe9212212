"""The LDAP client against a real slapd (LDAPS and StartTLS with a test CA)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proto import commands_pb2 as pb
from replica.auth.ldap import DirectoryMisconfigured, DirectoryUnavailable, LdapDirectory
from tests.directory import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, group_dn


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = Slapd(
        str(tmp_path_factory.mktemp("slapd")),
        people={"alice": "alice-pw", "bob": "bob-pw", "Carol": "carol-pw", "bad name!": "x"},
        groups={"admins": ["alice"]},
    ).start()
    yield server
    server.stop()


def _settings(slapd: Slapd, **kw: object) -> pb.LdapSettings:
    fields: dict[str, object] = {
        "url": slapd.url,
        "ca_pem": slapd.ca_pem.decode(),
        "bind_dn": SERVICE_DN,
        "user_base_dn": PEOPLE,
        "user_filter": "(objectClass=inetOrgPerson)",
        "username_attribute": "uid",
        "admin_group_dn": group_dn("admins"),
    }
    return pb.LdapSettings(**{**fields, **kw})  # type: ignore[arg-type]


def test_passwords_are_checked_by_binding_as_the_user(slapd: Slapd) -> None:
    ldap = LdapDirectory(_settings(slapd), SERVICE_PASSWORD)
    found = ldap.authenticate("alice", "alice-pw")
    assert found is not None and found[0].dn.startswith("uid=alice,") and found[1]  # admin
    bob = ldap.authenticate("bob", "bob-pw")
    assert bob is not None and not bob[1]
    assert ldap.authenticate("bob", "alice-pw") is None
    # An empty password would be an anonymous bind, which LDAP lets through.
    assert ldap.authenticate("bob", "") is None
    # Filter metacharacters are escaped, never a wildcard; unknown users are refused.
    for name in ("*", "b*", "bob)(uid=*", "nobody"):
        assert ldap.authenticate(name, "bob-pw") is None
    assert ldap.authenticate("carol", "carol-pw") is not None  # names are lower case here


def test_the_sync_lists_users_whose_names_can_be_accounts(slapd: Slapd) -> None:
    ldap = LdapDirectory(_settings(slapd), SERVICE_PASSWORD)
    with ldap.connection() as conn:
        names = sorted(u.name for u in ldap.users(conn))
        assert names == ["alice", "bob", "carol"]  # "bad name!" cannot be an account
        assert ldap.members(conn, group_dn("admins")) == ["uid=alice,ou=people,dc=example,dc=org"]
        assert ldap.members(conn, group_dn("no-such-group")) == []


def test_transport_security_is_required_and_checked(slapd: Slapd) -> None:
    with pytest.raises(DirectoryMisconfigured, match="clear"):
        LdapDirectory(_settings(slapd, url=slapd.plain_url), SERVICE_PASSWORD)
    start_tls = LdapDirectory(
        _settings(slapd, url=slapd.plain_url, start_tls=True), SERVICE_PASSWORD
    )
    assert start_tls.authenticate("bob", "bob-pw") is not None
    plain = _settings(slapd, url=slapd.plain_url, allow_plain=True)
    assert LdapDirectory(plain, SERVICE_PASSWORD).authenticate("bob", "bob-pw") is not None
    untrusted = LdapDirectory(_settings(slapd, ca_pem=""), SERVICE_PASSWORD)
    with pytest.raises(DirectoryUnavailable, match="(?i)certificate"):
        untrusted.authenticate("bob", "bob-pw")
    with pytest.raises(DirectoryUnavailable, match="service account"):
        LdapDirectory(_settings(slapd), "wrong").authenticate("bob", "bob-pw")
    with pytest.raises(DirectoryMisconfigured, match="filter"):
        LdapDirectory(_settings(slapd, user_filter="((("), SERVICE_PASSWORD).authenticate(
            "bob", "bob-pw"
        )


def test_a_directory_that_does_not_answer_is_unavailable(tmp_path) -> None:
    stopped = Slapd(str(tmp_path / "slapd"), people={"bob": "bob-pw"}).start()
    stopped.stop()
    ldap = LdapDirectory(_settings(stopped), SERVICE_PASSWORD)
    with pytest.raises(DirectoryUnavailable, match="cannot reach"):
        ldap.authenticate("bob", "bob-pw")
