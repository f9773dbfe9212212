"""The verified-token cache: bounded, forgets expired tokens, and an entry from an
earlier accounts generation (a password change, a revocation) is not used."""

from __future__ import annotations

import time

from replica.auth.tokens import Claims
from replica.auth.verified_tokens import VerifiedTokens


def claims(subject: str) -> Claims:
    return Claims(subject, {}, time.time(), "", "access", time.time() + 300)


def test_a_token_is_kept_until_it_expires_and_only_for_its_generation() -> None:
    cache = VerifiedTokens()
    cache.put("t1", claims("orca"), time.time() + 300, generation=7)
    cache.put("t2", claims("moby"), time.time() - 1, generation=7)
    hit = cache.get("t1", 7)
    assert hit is not None and hit.subject == "orca"
    assert cache.get("t2", 7) is None  # expired
    assert cache.get("t1", 8) is None  # the accounts changed since it was checked
    assert cache.get("unknown", 7) is None


def test_the_cache_holds_at_most_its_bound_and_drops_the_least_recently_used() -> None:
    cache = VerifiedTokens(max_entries=3)
    for n in range(3):
        cache.put(f"t{n}", claims(f"u{n}"), time.time() + 300, 1)
    assert cache.get("t0", 1) is not None  # t0 used: t1 is now the oldest
    cache.put("t3", claims("u3"), time.time() + 300, 1)
    assert len(cache) == 3
    assert cache.get("t1", 1) is None
    assert all(cache.get(t, 1) is not None for t in ("t0", "t2", "t3"))
