"""Client-certificate sign-in: which account a certificate names, and what refuses it."""

from __future__ import annotations

import itertools

import pytest
from cryptography import x509

from consensus import MetadataState
from proto import commands_pb2 as pb
from replica import pki
from replica.client_certs import CertificateSignIn, name_of, parse_ca
from replica.errors import InvalidInput, Unauthorized


@pytest.fixture
def state(tmp_path) -> MetadataState:
    state = MetadataState(str(tmp_path / "state"))
    index = itertools.count(1)
    for command in (
        pb.Command(put_account=pb.PutAccount(name="alice", password_hash="h")),
        pb.Command(put_account=pb.PutAccount(name="eng", is_org=True)),
        pb.Command(
            sync_directory=pb.SyncDirectory(
                users=[pb.DirectoryUser(name="gone", dn="uid=gone", active=True)]
            )
        ),
        pb.Command(
            sync_directory=pb.SyncDirectory(
                users=[pb.DirectoryUser(name="gone", dn="uid=gone", active=False)]
            )
        ),
    ):
        state.apply(next(index), command.SerializeToString())
    return state


def _cert(ca: tuple[bytes, bytes], name: str, emails: list[str] | None = None) -> x509.Certificate:
    pem, _ = pki.issue_client(ca[0], ca[1], name, emails or [])
    return x509.load_pem_x509_certificate(pem)


def test_names_come_from_the_cn_or_a_san() -> None:
    ca = pki.create_ca("Corp")
    cert = _cert(ca, "Alice", ["alice.smith@example.org"])
    assert name_of(cert, "cn") == "alice" and name_of(cert, "") == "alice"
    assert name_of(cert, "email") == "alice.smith"
    assert name_of(cert, "dns") == ""


def test_only_ca_certificates_are_trusted() -> None:
    ca = pki.create_ca("Corp")
    parse_ca(ca[0].decode())
    leaf, _ = pki.issue_client(ca[0], ca[1], "alice", [])
    with pytest.raises(InvalidInput, match="not a CA"):
        parse_ca(leaf.decode())
    with pytest.raises(InvalidInput, match="PEM"):
        parse_ca("hello")


def test_a_certificate_signs_in_only_an_active_user(state: MetadataState) -> None:
    corp, other = pki.create_ca("Corp"), pki.create_ca("Other")
    settings = pb.AuthSettings(client_cas=[pb.ClientCa(name="corp", pem=corp[0].decode())])
    sign_in = CertificateSignIn()
    assert sign_in.user(state.view, settings, _cert(corp, "alice")) == "alice"
    for name, why in (("eng", "no active account"), ("gone", "no active account"),
                      ("nobody", "no active account")):  # fmt: skip
        with pytest.raises(Unauthorized, match=why):
            sign_in.user(state.view, settings, _cert(corp, name))
    with pytest.raises(Unauthorized, match="not trusted"):
        sign_in.user(state.view, settings, _cert(other, "alice"))
    revoked = _cert(corp, "alice")
    settings.revoked_serials.append(format(revoked.serial_number, "x"))
    settings.revision = 1
    with pytest.raises(Unauthorized, match="revoked"):
        sign_in.user(state.view, settings, revoked)
