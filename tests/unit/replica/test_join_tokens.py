"""Join tokens expire, can be revoked, and cannot be forged or stretched."""

from __future__ import annotations

import pytest

from replica import join_tokens
from replica.join_tokens import InvalidJoinToken

NOW = 1_800_000_000_000


def test_a_fresh_token_is_accepted_and_carries_its_ca_pin() -> None:
    token = join_tokens.issue("s3cret", NOW, 3600, "ab" * 32)
    join_tokens.check("s3cret", token, NOW + 1000, 0)
    assert join_tokens.ca_pin(token) == "ab" * 32
    assert join_tokens.ca_pin(join_tokens.issue("s3cret", NOW)) == ""


@pytest.mark.parametrize(
    "now, valid_after, secret, reason",
    [
        (NOW + 3600_001, 0, "s3cret", "expired"),
        (NOW + 1000, NOW + 1, "s3cret", "revoked"),
        (NOW + 1000, 0, "another cluster", "invalid"),
    ],
)
def test_expired_revoked_or_foreign_tokens_are_refused(
    now: int, valid_after: int, secret: str, reason: str
) -> None:
    token = join_tokens.issue("s3cret", NOW, 3600)
    with pytest.raises(InvalidJoinToken, match=reason):
        join_tokens.check(secret, token, now, valid_after)


def test_a_stretched_or_malformed_token_is_refused() -> None:
    prefix, issued, expires, proof = join_tokens.issue("s3cret", NOW, 60).split(".")
    stretched = ".".join([prefix, issued, str(int(expires) + 10**9), proof])
    for token in (stretched, "qreg-join-" + "0" * 64, "", "qreg-join-v2.x.y.z"):
        with pytest.raises(InvalidJoinToken):
            join_tokens.check("s3cret", token, NOW, 0)
