"""Who may do what to a repository.

A user's actions on a repository are the union of:
  - the repository's visibility: anyone, anonymous included, pulls a public one;
  - the user's global role: read-only (pull), read-write (pull, push), admin (all);
  - the namespace: a user owns every repository under their own name;
  - organization teams: members of the organization's `owners` team have every
    action on its repositories; other teams get what the repository grants them
    (read-only, read-write, admin).
Actions are the Docker token spec's: pull, push, delete ("*" in a request means all).
"""

from __future__ import annotations

import lmdb

from consensus import accounts

ALL = frozenset({"pull", "push", "delete"})
LEVELS: dict[str, frozenset[str]] = {
    "": frozenset(),
    "read-only": frozenset({"pull"}),
    "read-write": frozenset({"pull", "push"}),
    "admin": ALL,
}


def actions(txn: lmdb.Transaction, user: str | None, repository: str) -> frozenset[str]:
    """What `user` (None: anonymous) may do to `repository`, which may not exist yet."""
    settings = accounts.repository(txn, repository)
    granted: set[str] = set()
    if settings is not None and settings.visibility == "public":
        granted.add("pull")
    if user is None:
        return frozenset(granted)
    account = accounts.account(txn, user)
    if account is None or account.is_org:
        return frozenset(granted)
    granted |= LEVELS.get(account.global_role, frozenset())
    namespace = repository.split("/", 1)[0] if "/" in repository else ""
    if namespace == user:
        return ALL
    owner = accounts.account(txn, namespace) if namespace else None
    if owner is not None and owner.is_org:
        teams = {team for org, team in accounts.memberships(txn, user) if org == namespace}
        if "owners" in teams:
            return ALL
        for (org, team), level in accounts.team_access(txn, repository).items():
            if org == namespace and team in teams:
                granted |= LEVELS.get(level, frozenset())
    return frozenset(granted)


def is_admin(txn: lmdb.Transaction, user: str | None) -> bool:
    account = accounts.account(txn, user) if user else None
    return account is not None and not account.is_org and account.global_role == "admin"


def manages_org(txn: lmdb.Transaction, user: str | None, org: str) -> bool:
    """Admins and members of the organization's owners team manage its teams and repositories."""
    if user is None:
        return False
    return is_admin(txn, user) or (org, "owners") in accounts.memberships(txn, user)
