"""TUF keys as Notary writes them, their ids, signature checks, and the keys the
trust service holds itself.

A key is {"keytype": T, "keyval": {"public": base64, "private": null}}; its id is the
sha256 of that object's canonical JSON. Types: `ecdsa`, `rsa` (public = DER
SubjectPublicKeyInfo), `ecdsa-x509`, `rsa-x509` (public = a PEM certificate: root
keys, and signers whose key comes from a client bundle), `ed25519` (public = raw 32
bytes). Methods: `ecdsa` (raw r||s over sha256), `rsapss` (sha256, salt as long as
the hash), `rsapkcs1v15`, `eddsa`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from replica.sealing import Sealer
from replica.trust import canonical

_METHODS = {
    "ecdsa": ("ecdsa", "ecdsa-x509"),
    "rsapss": ("rsa", "rsa-x509"),
    "rsapkcs1v15": ("rsa", "rsa-x509"),
    "eddsa": ("ed25519",),
}
_MIN_RSA_BITS = 2048


class BadKey(ValueError):
    """A key object that is not a usable public key of a known type."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    public: bytes
    key_id: str
    crypto: Any  # the cryptography public key
    certificate: x509.Certificate | None

    def json(self) -> dict[str, Any]:
        return {
            "keytype": self.key_type,
            "keyval": {"private": None, "public": base64.b64encode(self.public).decode()},
        }


def key_id(key_type: str, public: bytes) -> str:
    body = {
        "keytype": key_type,
        "keyval": {"private": None, "public": base64.b64encode(public).decode()},
    }
    return hashlib.sha256(canonical.encode(body)).hexdigest()


def parse(value: Any) -> PublicKey:
    """A key object from metadata; BadKey if it is not one."""
    if not isinstance(value, dict) or not isinstance(value.get("keyval"), dict):
        raise BadKey("a key is an object with keytype and keyval")
    key_type = value.get("keytype")
    encoded = value["keyval"].get("public")
    if not isinstance(key_type, str) or not isinstance(encoded, str):
        raise BadKey("a key has a keytype and a base64 public value")
    try:
        public = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise BadKey("a key's public value is base64") from None
    certificate = None
    try:
        if key_type in ("ecdsa-x509", "rsa-x509"):
            certificate = x509.load_pem_x509_certificate(public)
            crypto: Any = certificate.public_key()
        elif key_type in ("ecdsa", "rsa"):
            crypto = serialization.load_der_public_key(public)
        elif key_type == "ed25519":
            crypto = ed25519.Ed25519PublicKey.from_public_bytes(public)
        else:
            raise BadKey(f"unknown key type {key_type[:40]!r}")
    except ValueError as e:
        raise BadKey(f"a {key_type} key that does not parse: {e}") from None
    wanted = ec.EllipticCurvePublicKey if key_type.startswith("ecdsa") else rsa.RSAPublicKey
    if key_type != "ed25519" and not isinstance(crypto, wanted):
        raise BadKey(f"a {key_type} key holds a {type(crypto).__name__}")
    if isinstance(crypto, rsa.RSAPublicKey) and crypto.key_size < _MIN_RSA_BITS:
        raise BadKey(f"RSA keys have at least {_MIN_RSA_BITS} bits")
    return PublicKey(key_type, public, key_id(key_type, public), crypto, certificate)


def from_public(key_type: str, public: bytes) -> PublicKey:
    """A key from its type and raw public value (as the state stores held keys)."""
    return parse({"keytype": key_type, "keyval": {"public": _b64(public)}})


def verifies(key: PublicKey, method: str, signature: bytes, message: bytes) -> bool:
    if key.key_type not in _METHODS.get(method, ()):
        return False
    try:
        if method == "ecdsa":
            half = len(signature) // 2
            if half == 0 or len(signature) % 2:
                return False
            r = int.from_bytes(signature[:half], "big")
            s = int.from_bytes(signature[half:], "big")
            key.crypto.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        elif method == "rsapss":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            key.crypto.verify(signature, message, pss, hashes.SHA256())
        elif method == "rsapkcs1v15":
            key.crypto.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.crypto.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def certificate_problem(key: PublicKey, gun: str, now: datetime.datetime) -> str | None:
    """Why a root key's certificate cannot vouch for `gun` (None: it can).

    As Notary checks roots: the certificate names the GUN as its common name and is
    within its validity period."""
    cert = key.certificate
    if cert is None:
        return f"root key {key.key_id[:12]} is not an X.509 certificate"
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not names or names[0].value != gun:
        return f"root certificate {key.key_id[:12]} does not name {gun}"
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return f"root certificate {key.key_id[:12]} is outside its validity period"
    return None


# ---- the keys the trust service holds (timestamp, snapshot) --------------------------


@dataclass(frozen=True)
class HeldKey:
    key: PublicKey
    private: ec.EllipticCurvePrivateKey

    def sign(self, message: bytes) -> dict[str, str]:
        der = self.private.sign(message, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return {
            "keyid": self.key.key_id,
            "method": "ecdsa",
            "sig": base64.b64encode(raw).decode(),
        }


class KeySeal:
    """Encrypts held private keys for the replicated state with a key derived from the
    cluster secret, so any replica can sign and the state alone (a backup) cannot."""

    def __init__(self, secret: str) -> None:
        self._sealer = Sealer(secret, b"qreg trust keys")

    def new_key(self) -> tuple[PublicKey, bytes]:
        """A new P-256 key: its public half and its sealed private half."""
        private = ec.generate_private_key(ec.SECP256R1())
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        sealed = self._sealer.seal(der, public)
        return from_public("ecdsa", public), sealed

    def open(self, public: bytes, sealed: bytes) -> HeldKey:
        der = self._sealer.open(sealed, public)
        private = serialization.load_der_private_key(der, password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        return HeldKey(from_public("ecdsa", public), private)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
