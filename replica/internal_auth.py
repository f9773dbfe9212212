"""The cluster's own credential: a token derived from the cluster secret, sent in a header.

Replicas send it to each other; the CLI sends it with a member's config. Kept free of
the web stack so the CLI can import it cheaply.
"""

from __future__ import annotations

import hashlib
import hmac

INTERNAL_HEADER = "X-Qreg-Internal"


def internal_token(secret: str | None) -> str | None:
    if not secret:
        return None
    return hmac.new(secret.encode(), b"qreg-internal-v1", hashlib.sha256).hexdigest()


def is_internal(token: str | None, header: str | None) -> bool:
    if not token or header is None:
        return False
    return hmac.compare_digest(token, header)
