"""TUF metadata documents as Notary writes them: {"signed": {...}, "signatures": [...]}.

Parsing checks structure only (types, versions, expiry format, role and key tables);
what a document must satisfy against the repository's current state is
validation.py's."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from replica.errors import InvalidRole, InvalidUpdate, MalformedJson
from replica.trust import canonical, keys

ROOT, TARGETS, SNAPSHOT, TIMESTAMP = "root", "targets", "snapshot", "timestamp"
BASE_ROLES = (ROOT, TARGETS, SNAPSHOT, TIMESTAMP)
_TYPES = {ROOT: "Root", TARGETS: "Targets", SNAPSHOT: "Snapshot", TIMESTAMP: "Timestamp"}
_DELEGATION = re.compile(r"targets(/[-a-z0-9_]+)+")  # Notary's characters
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")
MAX_ROLE_NAME = 255
MAX_SIGNATURES = 64  # each costs a verification: a bound on what one upload costs


def check_role(name: str) -> str:
    """A role name Notary accepts: a base role or a delegation under targets."""
    if name in BASE_ROLES:
        return name
    if len(name) > MAX_ROLE_NAME or not _DELEGATION.fullmatch(name):
        raise InvalidRole(detail={"role": name[:100]})
    return name


def is_delegation(name: str) -> bool:
    return name.startswith(TARGETS + "/")


def parent(name: str) -> str:
    return name.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Signature:
    key_id: str
    method: str
    value: bytes


@dataclass(frozen=True)
class Document:
    role: str
    raw: bytes  # exactly as uploaded, stored and served
    signed: dict[str, Any]
    signatures: tuple[Signature, ...]
    version: int
    expires: datetime.datetime
    message: bytes  # the canonical bytes the signatures cover


@dataclass(frozen=True)
class Role:
    name: str
    threshold: int
    keys: dict[str, keys.PublicKey]
    paths: tuple[str, ...] | None = None  # a delegation's allowed target prefixes


def parse(role: str, raw: bytes) -> Document:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise MalformedJson(detail={"role": role}) from None
    if not isinstance(document, dict):
        raise MalformedJson(detail={"role": role})
    signed = document.get("signed")
    sigs = document.get("signatures")
    if not isinstance(signed, dict) or not isinstance(sigs, list):
        raise MalformedJson("a TUF document has signed and signatures", detail={"role": role})
    wanted = _TYPES[TARGETS if is_delegation(role) else role]
    if signed.get("_type") != wanted:
        raise _invalid(role, f"_type is {wanted}")
    version = signed.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _invalid(role, "version is a whole number from 1")
    try:
        message = canonical.encode(signed)
    except canonical.NotCanonical as e:
        raise _invalid(role, str(e)) from None
    if len(sigs) > MAX_SIGNATURES:
        raise _invalid(role, f"at most {MAX_SIGNATURES} signatures")
    signatures = []
    for s in sigs:
        if not isinstance(s, dict) or not all(
            isinstance(s.get(f), str) for f in ("keyid", "method", "sig")
        ):
            raise _invalid(role, "a signature has keyid, method and sig")
        try:
            value = base64.b64decode(s["sig"], validate=True)
        except binascii.Error:
            raise _invalid(role, "a signature's sig is base64") from None
        signatures.append(Signature(s["keyid"], s["method"], value))
    return Document(role, raw, signed, tuple(signatures), version, _expires(role, signed), message)


def _expires(role: str, signed: dict[str, Any]) -> datetime.datetime:
    text = signed.get("expires")
    m = _TIME.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise _invalid(role, "expires is an RFC 3339 time")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    fraction = (m.group(2) or ".0")[:7]
    try:
        return datetime.datetime.fromisoformat(m.group(1) + fraction + zone)
    except ValueError:
        raise _invalid(role, "expires is an RFC 3339 time") from None


def _invalid(role: str, why: str) -> InvalidUpdate:
    return InvalidUpdate(f"{role}: {why}", detail={"role": role})


def _key_table(role: str, table: Any) -> dict[str, keys.PublicKey]:
    if not isinstance(table, dict):
        raise _invalid(role, "keys is an object of key id to key")
    found = {}
    for key_id, value in table.items():
        try:
            key = keys.parse(value)
        except keys.BadKey as e:
            raise _invalid(role, str(e)) from None
        if key.key_id != key_id:
            raise _invalid(role, f"key {str(key_id)[:16]} is listed under another key's id")
        found[key_id] = key
    return found


def _role(owner: str, name: str, spec: Any, table: dict[str, keys.PublicKey]) -> Role:
    if not isinstance(spec, dict):
        raise _invalid(owner, f"role {name} is an object")
    threshold = spec.get("threshold")
    ids = spec.get("keyids")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        raise _invalid(owner, f"role {name}'s threshold is at least 1")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i in table for i in ids):
        raise _invalid(owner, f"role {name}'s keyids name keys the document lists")
    if len(set(ids)) < threshold:
        raise _invalid(owner, f"role {name} has fewer keys than its threshold")
    return Role(name, threshold, {i: table[i] for i in ids})


def root_roles(root: Document) -> dict[str, Role]:
    """The four base roles a root delegates to, with their keys."""
    table = _key_table(ROOT, root.signed.get("keys"))
    specs = root.signed.get("roles")
    if not isinstance(specs, dict) or not all(r in specs for r in BASE_ROLES):
        raise _invalid(ROOT, "roles names root, targets, snapshot and timestamp")
    return {name: _role(ROOT, name, specs[name], table) for name in BASE_ROLES}


def delegations(document: Document) -> dict[str, Role]:
    """The roles a targets document delegates to (its direct children only)."""
    spec = document.signed.get("delegations")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise _invalid(document.role, "delegations is an object")
    table = _key_table(document.role, spec.get("keys") or {})
    found = {}
    for entry in spec.get("roles") or []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or parent(name) != document.role:
            raise _invalid(document.role, "a delegation names a direct child role")
        check_role(name)
        paths = entry.get("paths") or []
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise _invalid(document.role, f"{name}'s paths are strings")
        role = _role(document.role, name, entry, table)
        found[name] = Role(name, role.threshold, role.keys, tuple(paths))
    return found


def valid_signers(document: Document, role: Role) -> list[str]:
    """The key ids of the role whose signatures on the document verify."""
    good: list[str] = []
    for s in document.signatures:
        key = role.keys.get(s.key_id)
        if key is not None and s.key_id not in good:
            if keys.verifies(key, s.method, s.value, document.message):
                good.append(s.key_id)
    return good


def require_signed(document: Document, role: Role) -> list[str]:
    good = valid_signers(document, role)
    if len(good) < role.threshold:
        raise _invalid(
            document.role,
            f"signed by {len(good)} of the keys {role.name} trusts; it needs {role.threshold}",
        )
    return good


def targets(document: Document) -> dict[str, dict[str, Any]]:
    table = document.signed.get("targets")
    if not isinstance(table, dict):
        raise _invalid(document.role, "targets is an object of name to file meta")
    for name, meta in table.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("hashes"), dict):
            raise _invalid(document.role, f"target {name[:60]} has hashes")
    return table


def file_meta(raw: bytes) -> dict[str, Any]:
    return {
        "hashes": {
            "sha256": base64.b64encode(hashlib.sha256(raw).digest()).decode(),
            "sha512": base64.b64encode(hashlib.sha512(raw).digest()).decode(),
        },
        "length": len(raw),
    }


def matches(raw: bytes, meta: Any) -> bool:
    """Whether file meta (a snapshot's or timestamp's entry) describes these bytes:
    every hash it gives agrees, and it gives sha256 or sha512."""
    if not isinstance(meta, dict) or not isinstance(meta.get("hashes"), dict):
        return False
    given = meta["hashes"]
    checked = 0
    for name, algorithm in (("sha256", hashlib.sha256), ("sha512", hashlib.sha512)):
        if name in given:
            if given[name] != base64.b64encode(algorithm(raw).digest()).decode():
                return False
            checked += 1
    return checked > 0


def time_text(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_document(signed: dict[str, Any], signers: list[keys.HeldKey]) -> bytes:
    message = canonical.encode(signed)
    document = {"signed": signed, "signatures": [k.sign(message) for k in signers]}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def sha256_digest(meta: dict[str, Any]) -> str | None:
    """A target's manifest digest ("sha256:…") from its file meta, if it gives one."""
    try:
        raw = base64.b64decode(meta["hashes"]["sha256"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        return None
    return "sha256:" + raw.hex() if len(raw) == 32 else None
