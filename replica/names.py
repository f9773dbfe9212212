"""The grammar of repository names, tags and digests (OCI distribution spec v1.1)."""

from __future__ import annotations

import hashlib
import re

from replica.errors import DigestInvalid, ManifestInvalid, NameInvalid

_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"(sha256|sha512):([a-f0-9]+)")
MAX_NAME_LENGTH = 255


def check_name(name: str) -> str:
    """`name` if it is a valid repository name; NAME_INVALID otherwise.

    The grammar admits no `.`-only component, no leading `/` and no `..`, so a
    valid name can never leave the data directory.
    """
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise NameInvalid(detail={"name": name[:300]})
    return name


def is_tag(reference: str) -> bool:
    return _TAG.fullmatch(reference) is not None


def check_digest(digest: str) -> str:
    """`digest` if it is a well-formed sha256 or sha512 digest; DIGEST_INVALID otherwise."""
    m = _DIGEST.fullmatch(digest)
    if not m or len(m.group(2)) != _HEX_LENGTH[m.group(1)]:
        raise DigestInvalid("invalid digest", detail={"digest": digest[:200]})
    return digest


def check_reference(reference: str) -> str:
    """A tag or digest as it appears in a manifest URL."""
    if ":" in reference:
        return check_digest(reference)
    if not is_tag(reference):
        raise ManifestInvalid("invalid tag", detail={"tag": reference[:200]})
    return reference


def new_hasher(digest: str) -> hashlib._Hash:
    return hashlib.new(digest.split(":", 1)[0])


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def repository_of_gun(gun: str) -> str:
    """The repository a content-trust GUN names: the GUN without its registry host
    (`127.0.0.1:5000/lib/app` -> `lib/app`), as docker forms it; a GUN without a host
    (what `notary -s URL` may use) is the repository itself. NameInvalid otherwise."""
    first, _, rest = gun.partition("/")
    looks_like_host = "." in first or ":" in first or first == "localhost"
    if rest and looks_like_host and _HOST.fullmatch(first):
        return check_name(rest)
    return check_name(gun)
