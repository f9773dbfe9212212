"""The qreg commands that need no cluster: certificates and password hashes."""

import os
import subprocess
import sys

from cryptography import x509

from cli import ports
from replica.auth import passwords
from tests.cluster import free_port_block

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")


def qreg(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        input=stdin,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_cache_certificate_comes_without_the_ca_key(tmp_path) -> None:
    assert qreg("tls", "ca", "--out", str(tmp_path / "ca")).returncode == 0
    done = qreg(
        "tls",
        "issue",
        "--ca",
        str(tmp_path / "ca"),
        "--for",
        "cache",
        "--name",
        "cache-eu",
        "--san",
        "eu.example.com",
        "--out",
        str(tmp_path / "eu"),
    )
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "eu")) == ["ca.crt", "cache.crt", "cache.key"]
    assert oct(os.stat(tmp_path / "eu" / "cache.key").st_mode & 0o777) == "0o600"
    ca = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((tmp_path / "eu" / "cache.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["eu.example.com"]


def test_hash_password_prints_a_hash_the_replica_accepts() -> None:
    done = qreg("user", "hash-password", "--password-stdin", stdin="a good password\n")
    assert done.returncode == 0, done.stderr
    stored = done.stdout.strip()
    assert passwords.check_password("a good password", stored)
    assert not passwords.check_password("another password", stored)
    short = qreg("user", "hash-password", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "8 characters" in short.stderr


def test_a_missing_config_is_named_with_the_default_it_fell_back_to(tmp_path) -> None:
    done = qreg("join-token", "--config", str(tmp_path / "nonexistent.toml"))
    assert done.returncode == 1
    assert f"no replica config at {tmp_path / 'nonexistent.toml'}" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "remove", "replica-2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.path.abspath(ROOT)},
    )
    assert "./data/replica-0/replica.toml" in done.stderr and "--config" in done.stderr
    assert "./data/replica-0/replica.toml" in qreg("remove", "--help").stdout


def _free_with_grpc_default() -> int:
    """A free port P whose gRPC default, P + 2000, is free too (only those two matter:
    the test gives the Raft address)."""
    for _ in range(100):
        port = free_port_block()
        if port + 2000 < 65536 and not ports.in_use(f"127.0.0.1:{port + 2000}"):
            return port
    raise RuntimeError("no free pair of ports")


def test_install_writes_the_ca_alone_for_clients_and_uses_the_join_ports(tmp_path) -> None:
    port = _free_with_grpc_default()
    done = qreg(
        "install",
        "--data",
        str(tmp_path / "r0"),
        "--port",
        str(port),
        "--raft-address",
        "127.0.0.1:0",
    )
    assert done.returncode == 0, done.stderr
    client_ca = tmp_path / "r0" / "ca.crt"
    assert client_ca.read_bytes() == (tmp_path / "r0" / "tls" / "ca.crt").read_bytes()
    assert not list((tmp_path / "r0").glob("*.key"))  # skopeo --cert-dir DATA works
    assert f"--cert-dir {tmp_path / 'r0'}" in done.stdout and f"--port {port}" in done.stdout
    assert f"blobs (gRPC) 127.0.0.1:{port + 2000}" in done.stdout
    assert "HOST:PORT+1000" in qreg("join", "--help").stdout
