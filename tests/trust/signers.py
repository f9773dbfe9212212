"""The real content-trust clients as tests drive them: `notary` with its own trust
directory and config, and signer keys with certificates (as a client bundle holds)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.tuf import certificate

# One passphrase for every key, so notary and docker can share a trust directory.
PASSPHRASE = "trust passphrase 1"
PASSPHRASES = {
    f"NOTARY_{role}_PASSPHRASE": PASSPHRASE
    for role in ("ROOT", "TARGETS", "SNAPSHOT", "DELEGATION")
}
DOCKER_PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": PASSPHRASE,
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": PASSPHRASE,
}


class Notary:
    """`notary -c CONFIG` with a trust directory of its own, signed in as `user`."""

    def __init__(
        self, directory: str, server: str, ca: str, user: str, password: str, trust_dir: str = ""
    ) -> None:
        self.directory = directory
        self.trust_dir = trust_dir or os.path.join(directory, "trust")
        self.user, self.password = user, password
        os.makedirs(directory, exist_ok=True)
        self.config = os.path.join(directory, "config.json")
        self.write_config(server, ca)

    def write_config(self, server: str, ca: str) -> None:
        remote = {"url": server, "root_ca": ca} if ca else {"url": server}
        config = {"trust_dir": self.trust_dir, "remote_server": remote}
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.ca = ca

    def run(self, *args: str, check: bool = True) -> Any:
        credentials = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        done = subprocess.run(
            ["notary", "-c", self.config, *args],
            capture_output=True,
            text=True,
            env={**os.environ, **PASSPHRASES, "NOTARY_AUTH": credentials},
            timeout=120,
        )
        if check:
            assert done.returncode == 0, f"notary {' '.join(args)}: {done.stderr}"
            return done.stdout
        return done

    def copy(self, directory: str, server: str) -> Notary:
        """Another client holding the same keys (and cache), talking to `server`."""
        shutil.copytree(self.trust_dir, os.path.join(directory, "trust"))
        return Notary(directory, server, self.ca, self.user, self.password)


def signer_files(directory: str, name: str) -> tuple[str, str]:
    """(key.pem, cert.pem) of a new P-256 signer whose certificate names it."""
    private = ec.generate_private_key(ec.SECP256R1())
    key = os.path.join(directory, f"{name}.key")
    cert = os.path.join(directory, f"{name}.crt")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert, "wb") as f:
        f.write(certificate(private, name))
    return key, cert
