"""Certificates close to expiry are named, with the days they have left."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from replica.cert_watch import expiring


def certificate(path, days: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_only_certificates_within_thirty_days_are_named(tmp_path) -> None:
    import time

    found = expiring(
        {
            "replica": certificate(tmp_path / "replica.crt", 10),
            "ca": certificate(tmp_path / "ca.crt", 3650),
            "missing": str(tmp_path / "nothing.crt"),
        },
        time.time(),
    )
    assert [name for name, _ in found] == ["replica"]
    assert 9 < found[0][1] <= 10
