"""Cache grants name the caches that may honour them."""

from __future__ import annotations

import pytest

from replica import pki
from replica.auth import grants

DIGEST = "sha256:" + "a" * 64


def test_a_grant_is_honoured_by_its_cache_and_those_upstream_only() -> None:
    cert, key = pki.create_ca()
    signer, verifier = grants.GrantSigner(key), grants.GrantVerifier(cert)
    grant = signer.issue("ahab", "geo/app", DIGEST, "edge", via=["edge", "region"])
    for cache in ("edge", "region", None):  # None: the cluster itself, fetching a miss
        assert verifier.verify(grant, "geo/app", DIGEST, cache).cache == "edge"
    with pytest.raises(grants.InvalidGrant, match="not this one"):
        verifier.verify(grant, "geo/app", DIGEST, "ap")
    alone = signer.issue("ahab", "geo/app", DIGEST, "eu")
    assert verifier.verify(alone, "geo/app", DIGEST, "eu").user == "ahab"
    with pytest.raises(grants.InvalidGrant):
        verifier.verify(alone, "geo/app", DIGEST, "ap")
