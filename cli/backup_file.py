"""The backup file: the metadata snapshot and the cluster's secrets, sealed with a passphrase.

A backup holds password hashes, and with the cluster secret and the CA key it lets
a restored cluster keep its identity (clients keep trusting its certificate, its
join tokens keep working). Anyone holding those could impersonate the cluster, so
the file is encrypted: scrypt turns the passphrase into a key, and the content is
sealed in 1 MiB AES-256-GCM chunks (the chunk number in the nonce, the last chunk
marked in the associated data, so chunks cannot be dropped, reordered or cut off).

Layout: MAGIC, salt (16 bytes), nonce prefix (8 bytes), then chunks of
[4-byte length][ciphertext + tag]. The plaintext is a 4-byte length, a JSON
document of secrets, then the metadata snapshot (consensus/snapshot.py's format).
A file without MAGIC is an older, unsealed metadata snapshot: it restores, with
no secrets.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"QREG-SEALED-BACKUP-1\n"
CHUNK = 1 << 20
PASSPHRASE_ENV = "QREG_BACKUP_PASSPHRASE"
MIN_PASSPHRASE = 12


class BadBackup(Exception):
    """Not a backup, a wrong passphrase, or a damaged file."""


def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << 15, r=8, p=1).derive(passphrase.encode())


def _nonce(prefix: bytes, counter: int) -> bytes:
    return prefix + struct.pack(">I", counter)


def _plain_chunks(head: bytes, rest: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """`head` then what `rest` holds, in CHUNK pieces, each with whether it is the last."""
    buffer = head
    while True:
        while len(buffer) <= CHUNK:  # a byte beyond the chunk tells it is not the last
            more = rest.read(CHUNK)
            if not more:
                yield buffer, True
                return
            buffer += more
        yield buffer[:CHUNK], False
        buffer = buffer[CHUNK:]


def seal(metadata: BinaryIO, secrets: dict[str, Any], passphrase: str, out: BinaryIO) -> None:
    """Write `secrets` and the metadata snapshot read from `metadata`, sealed, to `out`."""
    salt, prefix = os.urandom(16), os.urandom(8)
    aead = AESGCM(_key(passphrase, salt))
    out.write(MAGIC + salt + prefix)
    preamble = json.dumps(secrets).encode()
    head = struct.pack(">I", len(preamble)) + preamble
    for counter, (chunk, last) in enumerate(_plain_chunks(head, metadata)):
        sealed = aead.encrypt(_nonce(prefix, counter), chunk, b"last" if last else b"more")
        out.write(struct.pack(">I", len(sealed)) + sealed)


def is_sealed(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _chunks(f: BinaryIO, passphrase: str) -> Iterator[bytes]:
    head = f.read(len(MAGIC) + 24)
    if not head.startswith(MAGIC) or len(head) < len(MAGIC) + 24:
        raise BadBackup("not a sealed qreg backup")
    salt, prefix = head[len(MAGIC) : len(MAGIC) + 16], head[len(MAGIC) + 16 :]
    aead = AESGCM(_key(passphrase, salt))
    counter = 0
    while True:
        raw = f.read(4)
        if len(raw) < 4:
            raise BadBackup("the backup is cut short")
        (length,) = struct.unpack(">I", raw)
        if length > CHUNK + 16:
            raise BadBackup("the backup is damaged")
        sealed = f.read(length)
        for flag in (b"more", b"last"):
            try:
                plain = aead.decrypt(_nonce(prefix, counter), sealed, flag)
            except InvalidTag:
                continue
            yield plain
            if flag == b"last":
                return
            break
        else:
            raise BadBackup(
                "wrong passphrase, or the backup is damaged"
                if counter == 0
                else "the backup is damaged"
            )
        counter += 1


def unseal(path: str, passphrase: str, metadata_out: BinaryIO) -> dict[str, Any]:
    """Write the metadata snapshot of a sealed backup to `metadata_out`; its secrets."""
    buffered = b""
    preamble_length: int | None = None
    secrets: dict[str, Any] | None = None
    with open(path, "rb") as f:
        for plain in _chunks(f, passphrase):
            if secrets is not None:
                metadata_out.write(plain)
                continue
            buffered += plain
            if preamble_length is None and len(buffered) >= 4:
                (preamble_length,) = struct.unpack(">I", buffered[:4])
            if preamble_length is not None and len(buffered) >= 4 + preamble_length:
                secrets = dict(json.loads(buffered[4 : 4 + preamble_length]))
                metadata_out.write(buffered[4 + preamble_length :])
    if secrets is None:
        raise BadBackup("the backup is damaged")
    return secrets


def passphrase(passphrase_file: str | None, confirm: bool) -> str:
    """From --passphrase-file, else QREG_BACKUP_PASSPHRASE, else asked on the terminal."""
    if passphrase_file:
        with open(passphrase_file) as f:
            value = f.read().rstrip("\n")
    elif os.environ.get(PASSPHRASE_ENV):
        value = os.environ[PASSPHRASE_ENV]
    elif not sys.stdin.isatty():
        raise BadBackup(f"no passphrase: give --passphrase-file or set {PASSPHRASE_ENV}")
    else:
        import getpass

        value = getpass.getpass("backup passphrase: ")
        if confirm and getpass.getpass("again: ") != value:
            raise BadBackup("the passphrases differ")
    if confirm and len(value) < MIN_PASSPHRASE:
        raise BadBackup(f"a backup passphrase has at least {MIN_PASSPHRASE} characters")
    return value
