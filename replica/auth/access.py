"""What a token grants: for each scope a client asked for, what of it the account may
do (the `access` claim of Docker's token spec), from the permissions in the state."""

from __future__ import annotations

from typing import Any

from consensus import MetadataState
from replica.auth import permissions
from replica.errors import NameInvalid
from replica.names import check_name, repository_of_gun


def granted(state: MetadataState, user: str | None, scopes: list[str]) -> list[dict[str, Any]]:
    """The access claim: for each scope asked, what of it the account may do."""
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, wanted = rest.rpartition(":")
        asked = {a.strip() for a in wanted.split(",") if a.strip()}
        if kind == "repository" and name:
            if "*" in asked:
                asked = set(permissions.ALL)
            access += _repository_access(state, user, name, asked)
        elif kind == "registry" and name == "api" and "*" in asked and user:
            # The management API acts as the account, within its own permission checks.
            access.append({"type": "registry", "name": "api", "actions": ["*"]})
        elif kind == "registry" and name == "catalog" and "*" in asked:
            # Listing is filtered by what the account may pull, at listing time.
            access.append({"type": "registry", "name": "catalog", "actions": ["*"]})
    return access


def _repository_access(
    state: MetadataState, user: str | None, name: str, asked: set[str]
) -> list[dict[str, Any]]:
    """A repository scope's grant. A content-trust GUN (`host:port/lib/app`) gets a
    `trust` entry with what the account may do to `lib/app`: never a repository
    entry under the GUN's own name, which may itself be a valid repository name."""
    try:
        repository = repository_of_gun(name)
    except NameInvalid:
        return []
    allowed = state.view(permissions.actions, user, repository)
    if repository == name:
        return [{"type": "repository", "name": name, "actions": sorted(asked & allowed)}]
    trusted = [{"type": "trust", "name": name, "actions": sorted(asked & allowed)}]
    try:
        check_name(name)
    except NameInvalid:
        return trusted
    own = state.view(permissions.actions, user, name)
    return [{"type": "repository", "name": name, "actions": sorted(asked & own)}, *trusted]
