"""The cluster's certificate authority, and the certificates it issues to replicas.

Layout under a replica's data directory:

    tls/ca.crt        the cluster CA certificate (what clients trust: GET /ca)
    tls/ca.key        its private key: every replica can issue a joiner's certificate
    tls/replica.crt   this replica's certificate, for HTTPS and for mutual TLS between
    tls/replica.key   replicas (client and server auth, the replica's names and addresses)

Keys are ECDSA P-256. A certificate from any other CA is not a peer's.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CA_YEARS = 10
_LEAF_DAYS = 825  # the longest leaf lifetime browsers and Go's crypto/x509 accept


@dataclass(frozen=True)
class TlsFiles:
    ca: str
    ca_key: str
    cert: str
    key: str

    @classmethod
    def under(cls, data_dir: str) -> TlsFiles:
        base = os.path.join(data_dir, "tls")
        return cls(
            os.path.join(base, "ca.crt"),
            os.path.join(base, "ca.key"),
            os.path.join(base, "replica.crt"),
            os.path.join(base, "replica.key"),
        )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def load_ca_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """The cluster CA's private key: an EC key (ES256 tokens and grants are signed with it)."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster CA key is not an EC key")
    return key


def ca_public_key(cert_pem: bytes) -> ec.EllipticCurvePublicKey:
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the cluster CA certificate holds no EC key")
    return key


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_ca(cluster_name: str = "Quorum Registry") -> tuple[bytes, bytes]:
    """A new self-signed CA: (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster_name} CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=365 * _CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def issue(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    common_name: str,
    names: list[str],
    key_pem: bytes | None = None,
    days: int = _LEAF_DAYS,
) -> tuple[bytes, bytes]:
    """A replica certificate for `names` (host names and IP addresses): (cert PEM, key
    PEM). A renewal passes the current key: only the certificate file changes, so a
    replica reloading it never pairs a new certificate with an old key."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = load_ca_key(ca_key_pem)
    key = load_ca_key(key_pem) if key_pem else ec.generate_private_key(ec.SECP256R1())
    alternatives: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):  # unique, in order
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        _leaf(ca_cert, ca_key, common_name, key, days, usages)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    days: int,
    usages: list[x509.ObjectIdentifier],
) -> x509.CertificateBuilder:
    """What every certificate the CA issues has: its name, validity from five minutes
    ago, not a CA, its extended key usages, the CA's key id."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )


def issue_client(
    ca_cert_pem: bytes, ca_key_pem: bytes, user: str, emails: list[str], days: int = 365
) -> tuple[bytes, bytes]:
    """A client certificate that signs `user` in (CN, and e-mail SANs if given), for
    client authentication only: (cert PEM, key PEM)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = load_ca_key(ca_key_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _leaf(ca_cert, ca_key, user, key, days, [ExtendedKeyUsageOID.CLIENT_AUTH])
    if emails:
        sans = x509.SubjectAlternativeName([x509.RFC822Name(e) for e in emails])
        builder = builder.add_extension(sans, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def common_name(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def expires_at(cert_pem: bytes) -> float:
    """When a certificate stops being valid (Unix time)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.not_valid_after_utc.timestamp()


def certificate_names(cert_pem: bytes) -> set[str]:
    """The host names and IP addresses a certificate is valid for (its SANs)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {
        *sans.get_values_for_type(x509.DNSName),
        *(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)),
    }


def fingerprint(cert_pem: bytes) -> str:
    """sha256 of the certificate's DER form, hex: what a join token pins."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def serial(cert_pem: bytes) -> str:
    """The certificate's serial number in lower-case hex (what revocation lists)."""
    return format(x509.load_pem_x509_certificate(cert_pem).serial_number, "x")


def write_private(path: str, data: bytes) -> None:
    """Write a file only its owner reads, atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def set_up_replica(
    files: TlsFiles, ca_cert: bytes, ca_key: bytes, replica_id: str, names: list[str]
) -> None:
    """Write the CA and a fresh certificate for this replica's names."""
    cert, key = issue(ca_cert, ca_key, replica_id, names)
    write_private(files.ca, ca_cert)
    os.chmod(files.ca, 0o644)
    write_private(files.ca_key, ca_key)
    write_private(files.key, key)
    write_private(files.cert, cert)
    os.chmod(files.cert, 0o644)
