"""Where a webhook may send, and how a delivery is signed."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from replica.webhooks.delivery import signature
from replica.webhooks.targets import TargetRefused, resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",  # carrier-grade NAT: not a public address either
    ],
)
def test_internal_addresses_are_refused_without_the_override(url: str) -> None:
    with pytest.raises(TargetRefused, match="internal"):
        resolve(url, allow_private=False)
    target = resolve(url, allow_private=True)
    assert target.url.startswith(url.split("://")[0])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/", "http"),
        ("file:///etc/passwd", "http"),
        ("https://user:secret@example.org/", "credentials"),
        ("https:///nohost", "host"),
    ],
)
def test_only_plain_http_urls(url: str, why: str) -> None:
    with pytest.raises(TargetRefused, match=why):
        resolve(url, allow_private=True)


def test_the_request_goes_to_the_checked_address_under_the_name() -> None:
    target = resolve("https://localhost:8443/path?q=1", allow_private=True)
    assert target.host == "localhost" and target.port == 8443
    assert target.url in ("https://127.0.0.1:8443/path?q=1", "https://[::1]:8443/path?q=1")


def test_the_signature_is_githubs_scheme_with_our_header() -> None:
    body = b'{"type":"push"}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert signature(b"secret", body) == f"sha256={expected}"
