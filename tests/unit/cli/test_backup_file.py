"""A sealed backup opens with its passphrase only, whole, and in order."""

from __future__ import annotations

import io
import os

import pytest

from cli import backup_file

PASSPHRASE = "a long enough passphrase"


def _sealed(metadata: bytes, secrets: dict) -> bytes:
    out = io.BytesIO()
    backup_file.seal(io.BytesIO(metadata), secrets, PASSPHRASE, out)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 10, backup_file.CHUNK - 30, 3 * backup_file.CHUNK + 7])
def test_what_is_sealed_comes_back(tmp_path, size: int) -> None:
    metadata = os.urandom(size)
    path = tmp_path / "b.qreg"
    path.write_bytes(_sealed(metadata, {"secret": "s3cret-value"}))
    assert backup_file.is_sealed(str(path))
    assert b"s3cret-value" not in path.read_bytes()
    out = io.BytesIO()
    assert backup_file.unseal(str(path), PASSPHRASE, out) == {"secret": "s3cret-value"}
    assert out.getvalue() == metadata


def test_a_wrong_passphrase_or_a_tampered_file_is_refused(tmp_path) -> None:
    sealed = _sealed(os.urandom(2 * backup_file.CHUNK), {"secret": "x"})
    path = tmp_path / "b.qreg"
    path.write_bytes(sealed)
    with pytest.raises(backup_file.BadBackup, match="wrong passphrase"):
        backup_file.unseal(str(path), "not the passphrase", io.BytesIO())
    first_chunk_end = len(backup_file.MAGIC) + 24 + 4 + backup_file.CHUNK + 16
    path.write_bytes(sealed[:first_chunk_end])  # the last chunk cut off
    with pytest.raises(backup_file.BadBackup, match="cut short"):
        backup_file.unseal(str(path), PASSPHRASE, io.BytesIO())
    damaged = bytearray(sealed)
    damaged[-5] ^= 1
    path.write_bytes(bytes(damaged))
    with pytest.raises(backup_file.BadBackup, match="damaged"):
        backup_file.unseal(str(path), PASSPHRASE, io.BytesIO())
