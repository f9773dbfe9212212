"""Accounts in the replicated state: users, organizations, teams, repositories'
visibility, team access and personal access tokens.

Key layout (same LMDB database as state.py, ``\\0`` between fields):

    u\\0<name>                    -> Account (a user or an organization)
    T\\0<org>\\0<team>             -> b"" (the team exists)
    k\\0<org>\\0<team>\\0<user>     -> b"" (the user is a member of the team)
    K\\0<user>\\0<org>\\0<team>     -> b"" (the same, indexed by user)
    v\\0<repository>              -> PutRepository (the repository's settings)
    a\\0<repository>\\0<org>\\0<team> -> access level of the team to the repository
    x\\0<user>\\0<token id>        -> PutAccessToken (a personal access token)
    B\\0bootstrapped              -> b"" (the first admin was created: never again)
    B\\0join_tokens_valid_after   -> int64 ms (join tokens issued before are revoked)
    z\\0<raft index, 16 digits>    -> the audit log: JSON of every account change

Every function here is deterministic, like the rest of the state machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import lmdb
from google.protobuf import json_format

from proto import commands_pb2 as pb

_SEP = b"\0"
ROLES = ("", "read-only", "read-write", "admin")
ACCESS = ("read-only", "read-write", "admin")
VISIBILITIES = ("private", "public")


def key(prefix: bytes, *parts: str) -> bytes:
    return prefix + _SEP + _SEP.join(p.encode() for p in parts)


def _fail(code: str, message: str) -> pb.Result:
    return pb.Result(error_code=code, message=message)


def scan(txn: lmdb.Transaction, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every key that starts with `prefix`, in key order."""
    cursor = txn.cursor()
    if cursor.set_range(prefix):
        for k, v in cursor:
            if not bytes(k).startswith(prefix):
                return
            yield bytes(k), bytes(v)


def _scan(txn: lmdb.Transaction, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """`scan`, read whole first: for loops that write while they walk."""
    return list(scan(txn, prefix))


def account(txn: lmdb.Transaction, name: str) -> pb.Account | None:
    raw = txn.get(key(b"u", name))
    return pb.Account.FromString(bytes(raw)) if raw else None


_BOOTSTRAPPED = key(b"B", "bootstrapped")
_JOIN_TOKENS_AFTER = key(b"B", "join_tokens_valid_after")


def _revoke_join_tokens(txn: lmdb.Transaction, c: pb.RevokeJoinTokens) -> pb.Result:
    # Never moves back: a replayed or stale revocation cannot revive tokens.
    txn.put(_JOIN_TOKENS_AFTER, str(max(c.before_ms, join_tokens_valid_after(txn))).encode())
    return pb.Result()


def join_tokens_valid_after(txn: lmdb.Transaction) -> int:
    """Join tokens issued before this time (ms) are revoked."""
    raw = txn.get(_JOIN_TOKENS_AFTER)
    return int(raw) if raw else 0


def _put_account(txn: lmdb.Transaction, c: pb.PutAccount) -> pb.Result:
    if c.bootstrap:
        # The install-time admin exists once per cluster: a deleted admin must not come
        # back at the next restart. A cluster from before this marker, which already
        # has accounts, counts as bootstrapped.
        done = txn.get(_BOOTSTRAPPED) is not None or bool(_scan(txn, key(b"u", "")))
        txn.put(_BOOTSTRAPPED, b"")
        if done:
            return _fail("ALREADY_EXISTS", "the cluster's first admin was created already")
    current = account(txn, c.name)
    if current is not None and c.create_only:
        return _fail("ALREADY_EXISTS", f"an account named {c.name} exists")
    if current is not None and current.is_org != c.is_org:
        return _fail(
            "ALREADY_EXISTS", f"{c.name} is a {'organization' if current.is_org else 'user'}"
        )
    if c.global_role not in ROLES:
        return _fail("INVALID_INPUT", f"unknown global role {c.global_role!r}")
    record = current or pb.Account(name=c.name, is_org=c.is_org, created_ms=c.at_ms)
    if c.password_hash and not c.is_org:
        record.password_hash = c.password_hash
        record.password_changed_ms = c.at_ms
        if current is not None and not c.keep_access_tokens:
            # Whoever learnt the old password may have made tokens with it.
            for k, _ in _scan(txn, key(b"x", c.name, "")):
                txn.delete(k)
    if c.set_role and not c.is_org:
        record.global_role = c.global_role
    txn.put(key(b"u", c.name), record.SerializeToString())
    if c.is_org and current is None:  # every organization has its owners team
        txn.put(key(b"T", c.name, "owners"), b"")
    return pb.Result()


def _delete_account(txn: lmdb.Transaction, c: pb.DeleteAccount) -> pb.Result:
    current = account(txn, c.name)
    if current is None:
        return _fail("NOT_FOUND", f"no account named {c.name}")
    if current.is_org:
        # As DTR does: an organization with repositories stays. Otherwise a new
        # organization of the same name would inherit them, and its teams the grants.
        held = _scan(txn, key(b"v", f"{c.name}/")) + _scan(txn, key(b"r", f"{c.name}/"))
        if held:
            return _fail(
                "DENIED", f"{c.name} still has {len(held)} repositories; delete them first"
            )
        for k, _ in _scan(txn, key(b"a", f"{c.name}/")):
            txn.delete(k)
    txn.delete(key(b"u", c.name))
    if current.is_org:
        for prefix in (key(b"T", c.name, ""), key(b"k", c.name, "")):
            for k, _ in _scan(txn, prefix):
                if k.startswith(key(b"k", c.name, "")):
                    _, _, team, user = k.split(_SEP)
                    txn.delete(key(b"K", user.decode(), c.name, team.decode()))
                txn.delete(k)
    else:
        for k, _ in _scan(txn, key(b"K", c.name, "")):
            _, _, org, team = k.split(_SEP)
            txn.delete(key(b"k", org.decode(), team.decode(), c.name))
            txn.delete(k)
        for k, _ in _scan(txn, key(b"x", c.name, "")):
            txn.delete(k)
    return pb.Result()


def _org(txn: lmdb.Transaction, name: str) -> pb.Result | None:
    found = account(txn, name)
    if found is None or not found.is_org:
        return _fail("NOT_FOUND", f"no organization named {name}")
    return None


def _put_team(txn: lmdb.Transaction, c: pb.PutTeam) -> pb.Result:
    if (missing := _org(txn, c.org)) is not None:
        return missing
    if txn.get(key(b"T", c.org, c.team)) is not None and c.create_only:
        return _fail("ALREADY_EXISTS", f"{c.org} has a team named {c.team}")
    txn.put(key(b"T", c.org, c.team), b"")
    return pb.Result()


def _delete_team(txn: lmdb.Transaction, c: pb.DeleteTeam) -> pb.Result:
    if c.team == "owners":
        return _fail("INVALID_INPUT", "the owners team cannot be deleted")
    if not txn.delete(key(b"T", c.org, c.team)):
        return _fail("NOT_FOUND", f"{c.org} has no team named {c.team}")
    for k, _ in _scan(txn, key(b"k", c.org, c.team, "")):
        user = k.split(_SEP)[3].decode()
        txn.delete(key(b"K", user, c.org, c.team))
        txn.delete(k)
    # A team only holds grants on its organization's repositories: drop them all, or a
    # new team of the same name would inherit them.
    for k, _ in _scan(txn, key(b"a", f"{c.org}/")):
        parts = k.split(_SEP)
        if parts[2].decode() == c.org and parts[3].decode() == c.team:
            txn.delete(k)
    return pb.Result()


def _set_team_member(txn: lmdb.Transaction, c: pb.SetTeamMember) -> pb.Result:
    if txn.get(key(b"T", c.org, c.team)) is None:
        return _fail("NOT_FOUND", f"{c.org} has no team named {c.team}")
    user = account(txn, c.user)
    if user is None or user.is_org:
        return _fail("NOT_FOUND", f"no user named {c.user}")
    if c.member:
        txn.put(key(b"k", c.org, c.team, c.user), b"")
        txn.put(key(b"K", c.user, c.org, c.team), b"")
    else:
        txn.delete(key(b"k", c.org, c.team, c.user))
        txn.delete(key(b"K", c.user, c.org, c.team))
    return pb.Result()


def _put_repository(txn: lmdb.Transaction, c: pb.PutRepository) -> pb.Result:
    namespace = c.repository.split("/", 1)[0]
    if "/" not in c.repository or account(txn, namespace) is None:
        return _fail("NOT_FOUND", f"no account named {namespace} to hold {c.repository}")
    if c.visibility not in VISIBILITIES:
        return _fail("INVALID_INPUT", f"visibility is private or public, not {c.visibility!r}")
    if txn.get(key(b"v", c.repository)) is not None and c.create_only:
        return _fail("ALREADY_EXISTS", f"the repository {c.repository} exists")
    txn.put(key(b"v", c.repository), c.SerializeToString())
    txn.put(key(b"r", c.repository), b"")
    return pb.Result()


def _delete_repository(txn: lmdb.Transaction, c: pb.DeleteRepository) -> pb.Result:
    found = txn.delete(key(b"v", c.repository))
    found = txn.delete(key(b"r", c.repository)) or found
    if not found:
        return _fail("NAME_UNKNOWN", f"no repository {c.repository}")
    for prefix in (b"a", b"t", b"M", b"l", b"f"):
        for k, _ in _scan(txn, key(prefix, c.repository, "")):
            txn.delete(k)
    return pb.Result()


def _set_team_access(txn: lmdb.Transaction, c: pb.SetTeamAccess) -> pb.Result:
    if txn.get(key(b"T", c.org, c.team)) is None:
        return _fail("NOT_FOUND", f"{c.org} has no team named {c.team}")
    if c.repository.split("/", 1)[0] != c.org:
        return _fail(
            "INVALID_INPUT",
            f"team {c.org}/{c.team} can only be granted repositories under {c.org}/",
        )
    if not c.access:
        txn.delete(key(b"a", c.repository, c.org, c.team))
        return pb.Result()
    if c.access not in ACCESS:
        return _fail("INVALID_INPUT", f"access is one of {', '.join(ACCESS)}, not {c.access!r}")
    txn.put(key(b"a", c.repository, c.org, c.team), c.access.encode())
    return pb.Result()


def _put_access_token(txn: lmdb.Transaction, c: pb.PutAccessToken) -> pb.Result:
    user = account(txn, c.user)
    if user is None or user.is_org:
        return _fail("NOT_FOUND", f"no user named {c.user}")
    txn.put(key(b"x", c.user, c.token_id), c.SerializeToString())
    return pb.Result()


def _revoke_access_token(txn: lmdb.Transaction, c: pb.RevokeAccessToken) -> pb.Result:
    if not txn.delete(key(b"x", c.user, c.token_id)):
        return _fail("NOT_FOUND", f"{c.user} has no token {c.token_id}")
    return pb.Result()


# The commands after which a bearer token issued earlier may no longer stand.
VOIDS_TOKENS = frozenset(
    {
        "put_account",
        "delete_account",
        "put_access_token",
        "revoke_access_token",
        "set_auth_settings",
        "sync_directory",
    }
)

APPLY: dict[str, Callable[[lmdb.Transaction, object], pb.Result]] = {
    "put_account": _put_account,  # type: ignore[dict-item]
    "delete_account": _delete_account,  # type: ignore[dict-item]
    "put_team": _put_team,  # type: ignore[dict-item]
    "delete_team": _delete_team,  # type: ignore[dict-item]
    "set_team_member": _set_team_member,  # type: ignore[dict-item]
    "put_repository": _put_repository,  # type: ignore[dict-item]
    "delete_repository": _delete_repository,  # type: ignore[dict-item]
    "set_team_access": _set_team_access,  # type: ignore[dict-item]
    "put_access_token": _put_access_token,  # type: ignore[dict-item]
    "revoke_access_token": _revoke_access_token,  # type: ignore[dict-item]
    "revoke_join_tokens": _revoke_join_tokens,  # type: ignore[dict-item]
}


def record(txn: lmdb.Transaction, index: int, command: pb.Command, result: pb.Result) -> None:
    """Append an account change (applied or refused) to the audit log."""
    kind = command.WhichOneof("kind")
    fields = json_format.MessageToDict(getattr(command, kind))
    fields.pop("passwordHash", None)
    fields.pop("secretHash", None)
    fields.pop("sealedPrivate", None)
    if kind == "put_webhook":
        fields.get("webhook", {}).pop("sealedSecret", None)
    if kind == "set_auth_settings":
        fields.get("settings", {}).get("ldap", {}).pop("sealedBindPassword", None)
    if kind == "sync_directory":  # what changed, not the whole directory
        sync = command.sync_directory
        fields = {
            "users": len(sync.users),
            "deactivated": [u.name for u in sync.users if not u.active][:100],
            "teams": [f"{t.org}/{t.team}" for t in sync.teams][:100],
        }
    if kind == "publish_trust":  # the roles and versions, not the metadata itself
        fields["files"] = [
            {"role": f.role, "version": f.version} for f in command.publish_trust.files
        ]
    entry = {
        "index": index,
        "at_ms": command.at_ms,
        "actor": command.actor,
        "action": kind,
        "fields": fields,
        "error": result.error_code,
    }
    txn.put(key(b"z", f"{index:016d}"), json.dumps(entry, sort_keys=True).encode())


def audit_log(txn: lmdb.Transaction, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Account changes after Raft index `after`, oldest first."""
    prefix = key(b"z", "")
    out: list[dict[str, Any]] = []
    cursor = txn.cursor()
    if cursor.set_range(key(b"z", f"{after + 1:016d}")):
        for k, value in cursor:
            if not bytes(k).startswith(prefix) or len(out) >= limit:
                break
            out.append(json.loads(bytes(value)))
    return out


# ---- queries ---------------------------------------------------------------------


def audit_latest(txn: lmdb.Transaction, limit: int = 200) -> list[dict[str, Any]]:
    """The latest audit entries, newest first."""
    prefix = key(b"z", "")
    out: list[dict[str, Any]] = []
    cursor = txn.cursor()
    if not cursor.set_range(key(b"z", "9" * 16)):
        cursor.last()
    for k, value in cursor.iterprev():
        if len(out) >= limit:
            break
        if bytes(k).startswith(prefix):
            out.append(json.loads(bytes(value)))
        elif bytes(k) < prefix:
            break
    return out


def bootstrapped(txn: lmdb.Transaction) -> bool:
    """Whether the cluster's first admin was ever created (it is not created again)."""
    return txn.get(_BOOTSTRAPPED) is not None


def accounts(txn: lmdb.Transaction) -> list[pb.Account]:
    return [pb.Account.FromString(v) for _, v in _scan(txn, key(b"u", ""))]


def teams(txn: lmdb.Transaction, org: str) -> list[str]:
    return [k.split(_SEP)[2].decode() for k, _ in _scan(txn, key(b"T", org, ""))]


def team_members(txn: lmdb.Transaction, org: str, team: str) -> list[str]:
    return [k.split(_SEP)[3].decode() for k, _ in _scan(txn, key(b"k", org, team, ""))]


def memberships(txn: lmdb.Transaction, user: str) -> list[tuple[str, str]]:
    """(org, team) of every team the user is in."""
    out = []
    for k, _ in _scan(txn, key(b"K", user, "")):
        parts = k.split(_SEP)
        out.append((parts[2].decode(), parts[3].decode()))
    return out


def repository(txn: lmdb.Transaction, name: str) -> pb.PutRepository | None:
    raw = txn.get(key(b"v", name))
    return pb.PutRepository.FromString(bytes(raw)) if raw else None


def declared_repositories(txn: lmdb.Transaction) -> list[str]:
    """Repositories created through the API (they may hold no image yet)."""
    return [k[2:].decode() for k, _ in _scan(txn, b"v" + _SEP)]


def team_access(txn: lmdb.Transaction, name: str) -> dict[tuple[str, str], str]:
    out = {}
    for k, v in _scan(txn, key(b"a", name, "")):
        parts = k.split(_SEP)
        out[(parts[2].decode(), parts[3].decode())] = v.decode()
    return out


def access_tokens(txn: lmdb.Transaction, user: str) -> list[pb.PutAccessToken]:
    return [pb.PutAccessToken.FromString(v) for _, v in _scan(txn, key(b"x", user, ""))]


def access_token(txn: lmdb.Transaction, user: str, token_id: str) -> pb.PutAccessToken | None:
    raw = txn.get(key(b"x", user, token_id))
    return pb.PutAccessToken.FromString(bytes(raw)) if raw else None
