"""Authentication settings and directory accounts in the replicated state: the mode
(managed, ldap, none), the LDAP connection, trusted client CAs and revocations, teams
kept in step with directory groups, and what a directory sync found.

Key layout:

    as\\0settings          -> AuthSettings (one record, replaced whole)
    tg\\0<org>\\0<team>     -> the DN of the directory group the team follows

A sync only ever touches accounts whose source is "ldap": managed accounts (the
bootstrap admin, robots) are never changed or deactivated by the directory.
"""

from __future__ import annotations

from typing import Any

import lmdb

from consensus import accounts
from consensus.accounts import key, scan
from proto import commands_pb2 as pb

_SEP = b"\0"
_SETTINGS = key(b"as", "settings")
MODES = ("managed", "ldap", "none")
IDENTITIES = ("cn", "email", "dns")
LDAP = "ldap"


def _fail(code: str, message: str) -> pb.Result:
    return pb.Result(error_code=code, message=message)


def settings(txn: lmdb.Transaction) -> pb.AuthSettings:
    raw = txn.get(_SETTINGS)
    found = pb.AuthSettings.FromString(bytes(raw)) if raw else pb.AuthSettings()
    found.mode = found.mode or "managed"
    return found


def _set_settings(txn: lmdb.Transaction, c: pb.SetAuthSettings) -> pb.Result:
    current = settings(txn)
    if c.expected_revision != current.revision:
        return _fail(
            "CONFLICT",
            f"the authentication settings changed meanwhile (revision {current.revision}, "
            f"not {c.expected_revision}): read them again",
        )
    wanted = c.settings
    if (wanted.mode or "managed") not in MODES:
        return _fail("INVALID_INPUT", f"mode is one of {', '.join(MODES)}, not {wanted.mode!r}")
    if (wanted.certificate_identity or "cn") not in IDENTITIES:
        return _fail("INVALID_INPUT", f"certificate identity is one of {', '.join(IDENTITIES)}")
    if wanted.mode == LDAP and not (wanted.ldap.url and wanted.ldap.user_base_dn):
        return _fail("INVALID_INPUT", "ldap mode needs the directory's URL and user base DN")
    stored = pb.AuthSettings()
    stored.CopyFrom(wanted)
    stored.revision = current.revision + 1
    txn.put(_SETTINGS, stored.SerializeToString())
    return pb.Result()


def team_groups(txn: lmdb.Transaction) -> list[tuple[str, str, str]]:
    """(org, team, group DN) of every team that follows a directory group."""
    out = []
    for k, v in scan(txn, b"tg" + _SEP):
        _, org, team = k.split(_SEP)
        out.append((org.decode(), team.decode(), v.decode()))
    return out


def _set_team_group(txn: lmdb.Transaction, c: pb.SetTeamDirectoryGroup) -> pb.Result:
    if txn.get(key(b"T", c.org, c.team)) is None:
        return _fail("NOT_FOUND", f"{c.org} has no team named {c.team}")
    if c.group_dn:
        txn.put(key(b"tg", c.org, c.team), c.group_dn.encode())
    else:
        txn.delete(key(b"tg", c.org, c.team))
    return pb.Result()


def _sync(txn: lmdb.Transaction, c: pb.SyncDirectory) -> pb.Result:
    skipped = []
    for user in c.users:
        current = accounts.account(txn, user.name)
        if current is not None and (current.is_org or current.source != LDAP):
            skipped.append(user.name)  # a managed account or an organization of that name
            continue
        if current is None:
            if not user.active:
                continue
            current = pb.Account(name=user.name, source=LDAP, created_ms=c.at_ms)
        current.directory_dn = user.dn
        if user.set_role:
            current.global_role = "admin" if user.admin else ""
        if not user.active and not current.deactivated:
            current.deactivated = True
            current.password_changed_ms = c.at_ms  # what was issued before stays void
        elif user.active:
            current.deactivated = False
        txn.put(key(b"u", user.name), current.SerializeToString())
    for team in c.teams:
        if txn.get(key(b"T", team.org, team.team)) is None:
            continue  # deleted since the sync read it
        wanted = set(team.members)
        for name in accounts.team_members(txn, team.org, team.team):
            member = accounts.account(txn, name)
            if name not in wanted and member is not None and member.source == LDAP:
                txn.delete(key(b"k", team.org, team.team, name))
                txn.delete(key(b"K", name, team.org, team.team))
        for name in sorted(wanted):
            member = accounts.account(txn, name)
            if member is not None and member.source == LDAP:
                txn.put(key(b"k", team.org, team.team, name), b"")
                txn.put(key(b"K", name, team.org, team.team), b"")
    if skipped:
        return pb.Result(
            message=f"{len(skipped)} directory users have names of managed accounts or "
            f"organizations and were left alone: {', '.join(skipped[:10])}"
        )
    return pb.Result()


def directory_accounts(txn: lmdb.Transaction) -> dict[str, pb.Account]:
    """Every account whose source is the directory, by name."""
    return {a.name: a for a in accounts.accounts(txn) if a.source == LDAP}


APPLY: dict[str, Any] = {
    "set_auth_settings": _set_settings,
    "sync_directory": _sync,
    "set_team_directory_group": _set_team_group,
}
