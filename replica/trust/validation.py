"""What an update to a GUN's trust data must satisfy, as notary-server checks it, and
the snapshot and timestamp the service signs to complete it.

- root: the next version, signed by a threshold of its own root keys (X.509
  certificates naming the GUN, within their validity) and, when it replaces a root,
  by a threshold of the previous root's keys;
- targets: signed by the keys the root gives the targets role; a delegation
  (targets/releases, targets/<signer>) by the keys its parent delegates to it, with
  every target inside the paths it was given;
- every role's version increases (VERSION otherwise), and nothing uploaded has expired;
- a snapshot sent by the client is signed by the root's snapshot keys and lists the
  hashes of the root, targets and delegations as they will be stored; without one,
  the service signs the snapshot, if the root trusts a snapshot key it holds;
- the timestamp is always the service's.

Anything else raises the Notary error (INVALID_UPDATE, MALFORMED_JSON, INVALID_ROLE)
and nothing is stored.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from replica.errors import InvalidUpdate, OldVersion
from replica.trust import keys
from replica.trust.metadata import (
    ROOT,
    SNAPSHOT,
    TARGETS,
    TIMESTAMP,
    Document,
    Role,
    check_role,
    delegations,
    file_meta,
    is_delegation,
    matches,
    parent,
    parse,
    require_signed,
    root_roles,
    sign_document,
    targets,
    time_text,
)

SNAPSHOT_LIFETIME = datetime.timedelta(days=3 * 365)
MAX_ROLES = 256  # documents per GUN, delegations included
TIMESTAMP_LIFETIME = datetime.timedelta(days=14)


@dataclass(frozen=True)
class Stored:
    """A GUN's trust data as the replica read it: each role's current document, and
    the keys the service holds per role (timestamp, snapshot)."""

    documents: dict[str, bytes]
    held: dict[str, list[keys.HeldKey]] = field(default_factory=dict)

    def version(self, role: str) -> int:
        raw = self.documents.get(role)
        return int(json.loads(raw)["signed"]["version"]) if raw else 0


@dataclass(frozen=True)
class Update:
    files: list[tuple[str, int, bytes]]  # (role, version, document), in order
    signers: list[str]  # "role:keyid" of the signatures that counted


def validate(gun: str, uploads: dict[str, bytes], stored: Stored, now: datetime.datetime) -> Update:
    uploads = {check_role(role): raw for role, raw in uploads.items()}
    uploads.pop(TIMESTAMP, None)  # the timestamp is always the service's (as notary-server)
    signers: list[str] = []
    files: list[tuple[str, int, bytes]] = []

    root = _new_root(gun, uploads, stored, now, signers)
    if root is None:
        raw = stored.documents.get(ROOT)
        if raw is None:
            raise InvalidUpdate("no pre-existing root and no root provided in update")
        root = parse(ROOT, raw)
    else:
        files.append((ROOT, root.version, root.raw))
    base = root_roles(root)

    loaded: dict[str, Document] = {}
    for role in sorted((r for r in uploads if r == TARGETS or is_delegation(r)), key=_depth):
        document = parse(role, uploads[role])
        trusted = base[TARGETS] if role == TARGETS else _delegated(role, loaded, stored)
        signers += [f"{role}:{k}" for k in require_signed(document, trusted)]
        _check_fresh(document, stored, now)
        found = targets(document)
        delegations(document)  # its own delegations must be well formed
        if trusted.paths is not None:
            _check_paths(document, trusted, found)
        loaded[role] = document
        files.append((role, document.version, document.raw))

    documents = {**stored.documents, **{r: d.raw for r, d in loaded.items()}}
    documents[ROOT] = root.raw
    if len(documents) > MAX_ROLES:
        raise InvalidUpdate(f"a repository's trust data has at most {MAX_ROLES} roles")
    if TARGETS not in documents:
        raise InvalidUpdate("no targets: the first publish includes targets.json")
    if SNAPSHOT in uploads:
        snapshot = parse(SNAPSHOT, uploads[SNAPSHOT])
        signers += [f"snapshot:{k}" for k in require_signed(snapshot, base[SNAPSHOT])]
        _check_fresh(snapshot, stored, now)
        meta = snapshot.signed.get("meta")
        for role in [ROOT, TARGETS, *loaded]:
            if not isinstance(meta, dict) or not matches(documents[role], meta.get(role)):
                raise InvalidUpdate(
                    f"the snapshot's hashes do not match {role} as it would be stored",
                    detail={"role": SNAPSHOT},
                )
        snapshot_raw = snapshot.raw
        files.append((SNAPSHOT, snapshot.version, snapshot.raw))
    else:
        snapshot_raw, version = _sign_snapshot(documents, stored, base[SNAPSHOT], now)
        files.append((SNAPSHOT, version, snapshot_raw))
    stamp, version = sign_timestamp(snapshot_raw, stored, base[TIMESTAMP], now)
    files.append((TIMESTAMP, version, stamp))
    return Update(files, signers)


def _depth(role: str) -> int:
    return role.count("/")


def _new_root(
    gun: str, uploads: dict[str, bytes], stored: Stored, now: datetime.datetime, signers: list[str]
) -> Document | None:
    raw = uploads.get(ROOT)
    if raw is None:
        return None
    root = parse(ROOT, raw)
    previous = parse(ROOT, stored.documents[ROOT]) if ROOT in stored.documents else None
    expected = previous.version + 1 if previous else 1
    if previous is not None and root.version == previous.version:
        raise OldVersion(f"root version {root.version} is already stored", detail={"role": ROOT})
    if root.version != expected:
        raise InvalidUpdate(
            f"root modifications must increment the version: expected {expected}, "
            f"got {root.version}",
            detail={"role": ROOT},
        )
    own = root_roles(root)[ROOT]
    problems = [keys.certificate_problem(k, gun, now) for k in own.keys.values()]
    usable = {i: k for (i, k), p in zip(own.keys.items(), problems, strict=True) if p is None}
    if len(usable) < own.threshold:
        reasons = "; ".join(p for p in problems if p)
        raise InvalidUpdate(f"root: {reasons}", detail={"role": ROOT})
    signers += [f"root:{k}" for k in require_signed(root, Role(ROOT, own.threshold, usable))]
    if previous is not None:
        # A new root must be accepted by the root it replaces (rotation).
        require_signed(root, root_roles(previous)[ROOT])
    if root.expires <= now:
        raise InvalidUpdate("root: has expired", detail={"role": ROOT})
    return root


def _delegated(role: str, loaded: dict[str, Document], stored: Stored) -> Role:
    owner = parent(role)
    document = loaded.get(owner)
    if document is None and owner in stored.documents:
        document = parse(owner, stored.documents[owner])
    if document is None:
        raise InvalidUpdate(f"{role}: its parent {owner} does not exist", detail={"role": role})
    found = delegations(document).get(role)
    if found is None:
        raise InvalidUpdate(f"{role}: {owner} does not delegate to it", detail={"role": role})
    return found


def _check_fresh(document: Document, stored: Stored, now: datetime.datetime) -> None:
    current = stored.version(document.role)
    if document.version <= current:
        # Valid but old: notary-server's storage answers VERSION for this.
        raise OldVersion(
            f"{document.role}: version {document.version} is not newer than {current}",
            detail={"role": document.role},
        )
    if document.expires <= now:
        raise InvalidUpdate(f"{document.role}: has expired", detail={"role": document.role})


def _check_paths(document: Document, role: Role, found: dict[str, Any]) -> None:
    paths = role.paths or ()
    for name in found:
        if not any(name.startswith(p) for p in paths):
            raise InvalidUpdate(
                f"{document.role}: target {name[:60]} is outside the paths it was delegated",
                detail={"role": document.role},
            )


def _signers(role: Role, held: list[keys.HeldKey], what: str) -> list[keys.HeldKey]:
    usable = [k for k in held if k.key.key_id in role.keys]
    if len(usable) < role.threshold:
        raise InvalidUpdate(
            f"no {what} was included in update and server does not hold current "
            f"{what} key for repository",
            detail={"role": what},
        )
    return usable


def _sign_snapshot(
    documents: dict[str, bytes], stored: Stored, role: Role, now: datetime.datetime
) -> tuple[bytes, int]:
    signers = _signers(role, stored.held.get(SNAPSHOT, []), SNAPSHOT)
    meta: dict[str, Any] = {}
    previous = stored.documents.get(SNAPSHOT)
    if previous is not None:
        meta = dict(json.loads(previous)["signed"].get("meta") or {})
    for name, raw in documents.items():
        if name not in (SNAPSHOT, TIMESTAMP):
            meta[name] = file_meta(raw)
    version = stored.version(SNAPSHOT) + 1
    signed = {
        "_type": "Snapshot",
        "expires": time_text(now + SNAPSHOT_LIFETIME),
        "meta": meta,
        "version": version,
    }
    return sign_document(signed, signers), version


def sign_timestamp(
    snapshot: bytes, stored: Stored, role: Role, now: datetime.datetime
) -> tuple[bytes, int]:
    """A new timestamp over `snapshot`, the next version after the stored one."""
    signers = _signers(role, stored.held.get(TIMESTAMP, []), TIMESTAMP)
    version = stored.version(TIMESTAMP) + 1
    signed = {
        "_type": "Timestamp",
        "expires": time_text(now + TIMESTAMP_LIFETIME),
        "meta": {SNAPSHOT: file_meta(snapshot)},
        "version": version,
    }
    return sign_document(signed, signers), version
