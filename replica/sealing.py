"""Secrets kept in the replicated state, sealed with a key derived from the cluster
secret: any replica can open them, the state alone (a backup, a snapshot) cannot."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class Sealer:
    """AES-GCM under HKDF(cluster secret, purpose): one purpose's sealed values cannot
    be opened as another's."""

    def __init__(self, secret: str, purpose: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
            secret.encode()
        )
        self._aead = AESGCM(derived)

    def seal(self, data: bytes, bound_to: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, bound_to)

    def open(self, sealed: bytes, bound_to: bytes = b"") -> bytes:
        """Raises cryptography.exceptions.InvalidTag if not sealed by this cluster."""
        return self._aead.decrypt(sealed[:12], sealed[12:], bound_to)
