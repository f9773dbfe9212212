"""What a repository's signatures say about its tags, and the signed-only policy.

A tag is signed when a targets role of one of the repository's GUNs names it with its
manifest's sha256: `targets` (signed with the root's targets key), or a delegation
reached from it (`targets/releases`, `targets/<signer>`) whose signatures verify with
the keys its parent gives it, within the paths it was given, unexpired. The trust
data is parsed once per timestamp of the repository's GUNs (every publish makes a new
one) and kept in a bounded cache, so the policy costs a manifest GET two small LMDB
reads and a dict lookup.

Signatures pushed as OCI referrers (cosign, notation, sigstore bundles) are listed
beside them but not verified (the registry holds no keys for them): they never
satisfy the policy.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from consensus import MetadataState
from consensus import trust as trust_state
from proto import commands_pb2 as pb
from replica.errors import Denied, RegistryError
from replica.names import is_tag
from replica.trust import metadata

log = logging.getLogger("qreg.trust")

_CACHED_REPOSITORIES = 1024
_REPARSE_S = 600.0  # expiry is judged at parse time: parse again this often
REFERRER_SIGNATURES = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": "cosign",
    "application/vnd.cncf.notary.signature": "notation",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "sigstore",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "sigstore",
}
_INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass(frozen=True)
class TrustSignature:
    gun: str
    role: str  # targets, targets/releases, targets/<signer>
    digest: str  # sha256:…
    size: int
    valid: bool  # the role's signatures verify and it has not expired


@dataclass
class _Signed:
    """A repository's signatures as of its GUNs' timestamps (`stamps`)."""

    stamps: tuple[tuple[str, str], ...]
    at: float
    tags: dict[str, list[TrustSignature]]
    # accepted signer roles (empty: any) -> the digests their valid signatures allow
    # pulling by digest: the signed manifests and the images a signed index names.
    allowed: dict[frozenset[str], frozenset[str]] = field(default_factory=dict)


class SignedTags:
    """Each repository's parsed signatures (a bounded cache, kept while its GUNs'
    timestamps stay the same), and this replica's recent policy refusals."""

    def __init__(self, state: MetadataState) -> None:
        self.state = state
        self._cache: collections.OrderedDict[str, _Signed] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.refusals: deque[dict[str, Any]] = deque(maxlen=1000)

    def signatures(self, repository: str) -> dict[str, list[TrustSignature]]:
        """Tag -> every TUF signature of it, across the repository's GUNs."""
        return self._signed(repository).tags

    def _signed(self, repository: str) -> _Signed:
        now = self.state.view(_stamps, repository)
        with self._lock:
            cached = self._cache.get(repository)
            if cached is not None and cached.stamps == now:
                if time.monotonic() - cached.at < _REPARSE_S:
                    self._cache.move_to_end(repository)
                    return cached
        tags: dict[str, list[TrustSignature]] = {}
        for gun, _ in now:
            for tag, found in _walk(gun, self.state.view(trust_state.documents, gun)).items():
                tags.setdefault(tag, []).extend(found)
        signed = _Signed(now, time.monotonic(), tags)
        with self._lock:
            self._cache[repository] = signed
            self._cache.move_to_end(repository)
            while len(self._cache) > _CACHED_REPOSITORIES:
                self._cache.popitem(last=False)
        return signed

    def check_pull(
        self,
        rules: pb.RepositoryPolicy,
        repository: str,
        reference: str,
        digest: str,
        user: str,
    ) -> None:
        """Refuse (DENIED) a pull the repository's signed-only policy does not allow."""
        if not rules.signed_only:
            return
        accepted = frozenset(rules.accepted_signers)
        signed = self._signed(repository)
        if is_tag(reference):
            found = signed.tags.get(reference, [])
            if any(_counts(s, accepted) and s.digest == digest for s in found):
                return
            why = _why_not(reference, digest, found, accepted)
        else:
            if digest in self._allowed(repository, signed, accepted):
                return
            why = f"{digest[:19]}… is not the digest of a signed tag"
        self.refusals.append(
            {
                "at_ms": int(time.time() * 1000),
                "repository": repository,
                "reference": reference[:200],
                "user": user,
                "reason": why,
            }
        )
        log.warning(
            "pull refused: %s",
            why,
            extra={"fields": {"event": "pull_refused_unsigned", "repository": repository}},
        )
        raise Denied(
            f"{repository} accepts only signed images: {why}",
            detail={"reference": reference[:200], "signers": sorted(accepted) or None},
        )

    def _allowed(
        self, repository: str, signed: _Signed, accepted: frozenset[str]
    ) -> frozenset[str]:
        found = signed.allowed.get(accepted)
        if found is None:
            digests = {
                s.digest for sigs in signed.tags.values() for s in sigs if _counts(s, accepted)
            }
            found = frozenset(digests | self._children(repository, digests))
            signed.allowed[accepted] = found
        return found

    def _children(self, repository: str, digests: Iterable[str]) -> set[str]:
        """The manifests a signed index names (docker pulls its platform's by digest)."""
        children: set[str] = set()
        for digest in digests:
            manifest = self.state.manifest(repository, digest)
            if manifest is None or manifest.media_type not in _INDEXES:
                continue
            try:
                entries = json.loads(manifest.body).get("manifests") or []
            except ValueError:
                continue
            children |= {
                e["digest"]
                for e in entries
                if isinstance(e, dict) and isinstance(e.get("digest"), str)
            }
        return children


def _stamps(txn: Any, repository: str) -> tuple[tuple[str, str], ...]:
    """(GUN, sha256 of its current timestamp) of each of the repository's GUNs."""
    found = []
    for gun in trust_state.guns(txn, repository):
        current = trust_state.current(txn, gun, metadata.TIMESTAMP)
        if current is not None:
            found.append((gun, current.sha256))
    return tuple(found)


def signers_of(found: list[TrustSignature], digest: str) -> list[str]:
    """The roles whose valid signatures name `digest`: the tag is signed if any."""
    return sorted({s.role for s in found if s.valid and s.digest == digest})


def stale(found: list[TrustSignature], digest: str) -> bool:
    """Validly signed, but only for other digests: the tag moved after signing."""
    valid = [s for s in found if s.valid]
    return bool(valid) and all(s.digest != digest for s in valid)


def _counts(s: TrustSignature, accepted: frozenset[str]) -> bool:
    return s.valid and (not accepted or s.role in accepted)


def _why_not(tag: str, digest: str, found: list[TrustSignature], accepted: frozenset[str]) -> str:
    if not found:
        return f"tag {tag} has no content-trust signature"
    if not any(s.valid for s in found):
        return f"the signatures of tag {tag} are no longer valid (expired or revoked)"
    if accepted and not any(s.valid and s.role in accepted for s in found):
        roles = ", ".join(sorted({s.role for s in found if s.valid}))
        return f"tag {tag} is signed by {roles}, not by " + ", ".join(sorted(accepted))
    return f"tag {tag} was moved after it was signed: the signed digest is not {digest[:19]}…"


def _walk(gun: str, documents: dict[str, bytes]) -> dict[str, list[TrustSignature]]:
    """Every target of the GUN's valid targets roles, from `targets` down."""
    tags: dict[str, list[TrustSignature]] = {}
    try:
        root = metadata.parse(metadata.ROOT, documents[metadata.ROOT])
        queue = [metadata.root_roles(root)[metadata.TARGETS]]
    except (KeyError, RegistryError):
        return tags
    now = metadata.now()
    while queue:
        role = queue.pop(0)
        raw = documents.get(role.name)
        if raw is None:
            continue
        try:
            document = metadata.parse(role.name, raw)
            entries = metadata.targets(document)
            children = metadata.delegations(document)
        except RegistryError:
            continue
        valid = (
            len(metadata.valid_signers(document, role)) >= role.threshold and document.expires > now
        )
        for name, meta in entries.items():
            if role.paths is not None and not any(name.startswith(p) for p in role.paths):
                continue
            digest = metadata.sha256_digest(meta)
            if digest:
                size = meta.get("length")
                tags.setdefault(name, []).append(
                    TrustSignature(gun, role.name, digest, int(size or 0), valid)
                )
        if valid:
            queue.extend(children.values())
    return tags


def referrer_signatures(state: MetadataState, repository: str, digest: str) -> list[dict[str, str]]:
    """Signatures stored as OCI referrers of a manifest (and cosign's tag scheme)."""
    found = []
    for d in state.referrers(repository, digest):
        kind = REFERRER_SIGNATURES.get(d.artifact_type) or (
            "sigstore" if d.artifact_type.startswith("application/vnd.dev.sigstore.bundle") else ""
        )
        if kind:
            found.append({"kind": kind, "digest": d.digest, "artifact_type": d.artifact_type})
    algorithm, _, hex_digest = digest.partition(":")
    cosign_tag = f"{algorithm}-{hex_digest}.sig"
    tagged = state.resolve(repository, cosign_tag)
    if tagged is not None:
        found.append({"kind": "cosign", "digest": tagged, "tag": cosign_tag})
    return found
