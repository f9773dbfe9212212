"""Sign-in by client certificate: a client presenting, over TLS, a certificate from one
of the cluster's trusted client CAs is the user its certificate names (DTR's "auth
bypass TLS root CA", what a UCP client bundle does).

Two layers. The HTTPS listener asks for a certificate once a client CA is trusted and
checks its chain, validity and key usage at the handshake (`follow_client_cas` loads
the CAs into the live TLS context: CAs only ever add to it until a restart). Then,
for each request that brings no other credentials, `CertificateSignIn.user` checks the
certificate again against the settings as they are now (its CA still trusted, its
serial not revoked, not in the CRL, not expired) and finds the account it names.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from collections.abc import Callable, MutableMapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consensus import accounts
from proto import commands_pb2 as pb
from replica.errors import InvalidInput, Unauthorized

log = logging.getLogger("qreg.auth")

FOLLOW_S = 2.0


def peer_certificate(scope: MutableMapping[str, Any]) -> x509.Certificate | None:
    """The client's certificate, verified by the TLS handshake (http_protocol.py puts
    it in the ASGI TLS extension), or None."""
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return x509.load_pem_x509_certificate(chain[0].encode()) if chain else None


def parse_ca(pem: str) -> x509.Certificate:
    """A client CA as an administrator gives it: one CA certificate, PEM."""
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise InvalidInput("not a PEM certificate") from None
    if len(certs) != 1:
        raise InvalidInput("give one CA certificate per name")
    try:
        constraints = certs[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise InvalidInput("this certificate is not a CA's (basicConstraints CA:FALSE)")
    return certs[0]


def parse_crl(pem: str) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(pem.encode())
    except ValueError:
        raise InvalidInput("not a PEM certificate revocation list") from None


def name_of(cert: x509.Certificate, identity: str) -> str:
    """The account name a certificate gives: its CN, the local part of its first
    e-mail SAN, or its first DNS SAN (lower case)."""
    if identity in ("", "cn"):
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value).strip().lower() if names else ""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    if identity == "email":
        emails = sans.get_values_for_type(x509.RFC822Name)
        return emails[0].split("@", 1)[0].lower() if emails else ""
    dns = sans.get_values_for_type(x509.DNSName)
    return dns[0].lower() if dns else ""


class CertificateSignIn:
    def __init__(self) -> None:
        self._compiled: tuple[int, list[x509.Certificate], Any] | None = None

    def _trusted(self, settings: pb.AuthSettings) -> tuple[list[x509.Certificate], Any]:
        if self._compiled is None or self._compiled[0] != settings.revision:
            cas = [x509.load_pem_x509_certificate(ca.pem.encode()) for ca in settings.client_cas]
            crl = x509.load_pem_x509_crl(settings.crl_pem.encode()) if settings.crl_pem else None
            self._compiled = (settings.revision, cas, crl)
        return self._compiled[1], self._compiled[2]

    def user(
        self, view: Callable[..., Any], settings: pb.AuthSettings, cert: x509.Certificate
    ) -> str:
        """The active account the certificate names; Unauthorized, saying why, if none."""
        cas, crl = self._trusted(settings)
        issuer = next((ca for ca in cas if _issued_by(cert, ca)), None)
        if issuer is None:
            raise Unauthorized("the client certificate's CA is not trusted by this registry")
        now = datetime.datetime.now(datetime.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Unauthorized("the client certificate has expired or is not valid yet")
        if not _for_clients(cert):
            raise Unauthorized("the certificate is not for client authentication")
        serial = format(cert.serial_number, "x")  # as revoked_serials holds them
        revoked = serial in settings.revoked_serials
        if crl is not None and crl.issuer == issuer.subject:
            revoked = (
                revoked
                or crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
            )
        if revoked:
            raise Unauthorized(f"the client certificate (serial {serial}) is revoked")
        name = name_of(cert, settings.certificate_identity)
        account = view(accounts.account, name) if name else None
        if account is None or account.is_org or account.deactivated:
            raise Unauthorized(
                f"the client certificate names {name or 'nobody'}, who has no active account here"
            )
        return name


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _for_clients(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True  # no restriction
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


async def follow_client_cas(context: ssl.SSLContext, pems: Callable[[], list[str] | None]) -> None:
    """Keep the listener's TLS context asking for, and checking, client certificates
    from the trusted CAs (new handshakes; a removed CA is refused per request)."""
    loaded: set[str] = set()
    while True:
        await asyncio.sleep(FOLLOW_S)
        try:
            wanted = pems()
        except Exception:
            log.exception("reading the trusted client CAs failed")
            continue
        if wanted is None:
            continue  # the replica is not ready yet
        new = [pem for pem in wanted if pem not in loaded]
        for pem in new:
            try:
                context.load_verify_locations(cadata=pem)
                loaded.add(pem)
            except ssl.SSLError as e:
                log.warning("a trusted client CA could not be loaded: %s", e)
        mode = ssl.CERT_OPTIONAL if wanted else ssl.CERT_NONE
        if context.verify_mode != mode:
            context.verify_mode = mode
            log.info(
                "HTTPS %s client certificates",
                "asks for" if mode == ssl.CERT_OPTIONAL else "no longer asks for",
            )


def pem_of(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()
