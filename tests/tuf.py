"""A small TUF client for tests that must send what no real client would (tampered
signatures, rolled-back versions, wrong snapshots): keys, certificates and signed
documents in Notary's formats. Real clients (notary, docker) are driven elsewhere."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from replica.trust import canonical

LATER = "2036-01-01T00:00:00Z"


class Key:
    """A P-256 key; with `common_name`, an ecdsa-x509 key (a root or a signer's cert)."""

    def __init__(self, common_name: str | None = None) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        if common_name is None:
            self.type = "ecdsa"
            self.public = self.private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            self.type = "ecdsa-x509"
            self.public = certificate(self.private, common_name)

    def json(self) -> dict[str, Any]:
        return public_json(self.type, self.public)

    @property
    def id(self) -> str:
        return key_id(self.json())

    def sign(self, message: bytes) -> dict[str, str]:
        r, s = decode_dss_signature(self.private.sign(message, ec.ECDSA(hashes.SHA256())))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return {"keyid": self.id, "method": "ecdsa", "sig": base64.b64encode(raw).decode()}


def public_json(key_type: str, public: bytes) -> dict[str, Any]:
    return {
        "keytype": key_type,
        "keyval": {"private": None, "public": base64.b64encode(public).decode()},
    }


def key_id(key: dict[str, Any]) -> str:
    return hashlib.sha256(canonical.encode(key)).hexdigest()


def certificate(private: ec.EllipticCurvePrivateKey, common_name: str) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(private, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def signed(body: dict[str, Any], *keys: Key) -> bytes:
    message = canonical.encode(body)
    return json.dumps({"signed": body, "signatures": [k.sign(message) for k in keys]}).encode()


def file_meta(raw: bytes) -> dict[str, Any]:
    return {
        "hashes": {
            "sha256": base64.b64encode(hashlib.sha256(raw).digest()).decode(),
            "sha512": base64.b64encode(hashlib.sha512(raw).digest()).decode(),
        },
        "length": len(raw),
    }


def target(digest: str, size: int) -> dict[str, Any]:
    """A targets entry for an image: its manifest's sha256 and size (as docker signs)."""
    raw = bytes.fromhex(digest.split(":", 1)[1])
    return {"hashes": {"sha256": base64.b64encode(raw).decode()}, "length": size}


class Repository:
    """One GUN's client side: a root key (certificate naming the GUN), targets and
    snapshot keys, and builders for each document."""

    def __init__(self, gun: str) -> None:
        self.gun = gun
        self.root_key = Key(common_name=gun)
        self.targets_key = Key()
        self.snapshot_key = Key()

    def root(
        self,
        timestamp_key: dict[str, Any],
        version: int = 1,
        snapshot_key: dict[str, Any] | None = None,
        signers: tuple[Key, ...] | None = None,
    ) -> bytes:
        snapshot = snapshot_key or self.snapshot_key.json()
        keys = {
            self.root_key.id: self.root_key.json(),
            self.targets_key.id: self.targets_key.json(),
            key_id(snapshot): snapshot,
            key_id(timestamp_key): timestamp_key,
        }
        body = {
            "_type": "Root",
            "consistent_snapshot": False,
            "expires": LATER,
            "keys": keys,
            "roles": {
                "root": {"keyids": [self.root_key.id], "threshold": 1},
                "targets": {"keyids": [self.targets_key.id], "threshold": 1},
                "snapshot": {"keyids": [key_id(snapshot)], "threshold": 1},
                "timestamp": {"keyids": [key_id(timestamp_key)], "threshold": 1},
            },
            "version": version,
        }
        return signed(body, *(signers or (self.root_key,)))

    def targets(
        self,
        entries: dict[str, dict[str, Any]],
        version: int,
        role: str = "targets",
        delegations: dict[str, Key] | None = None,
        signer: Key | None = None,
    ) -> bytes:
        body: dict[str, Any] = {
            "_type": "Targets",
            "expires": LATER,
            "targets": entries,
            "version": version,
        }
        if delegations is not None:
            body["delegations"] = {
                "keys": {k.id: k.json() for k in delegations.values()},
                "roles": [
                    {"name": name, "keyids": [k.id], "threshold": 1, "paths": [""]}
                    for name, k in delegations.items()
                ],
            }
        return signed(body, signer or self.targets_key)

    def snapshot(self, documents: dict[str, bytes], version: int) -> bytes:
        body = {
            "_type": "Snapshot",
            "expires": LATER,
            "meta": {role: file_meta(raw) for role, raw in documents.items()},
            "version": version,
        }
        return signed(body, self.snapshot_key)


def multipart(files: dict[str, bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    """httpx's `files=` for a publish: one part per role, named as notary names them."""
    return [("files", (f"{role}.json", data)) for role, data in files.items()]
