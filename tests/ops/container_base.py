"""A base image for building the Dockerfile where no image registry is reachable:
Debian bookworm from Debian's package mirror (debootstrap, minbase) with python3 and
venv, without package lists, caches and docs. Built once and kept as a tar under
~/.cache/qreg-tests; each test's dockerd imports it (a few seconds).

This machine reaches PyPI through a proxy whose CA only the host trusts: the base gets
the host's CA bundle and a pip.conf naming it, so the image's `pip install` works here
as it would anywhere else without them."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

CACHE = os.path.expanduser("~/.cache/qreg-tests")
TAR = os.path.join(CACHE, "debian-bookworm-python3.tar")
MIRROR = "http://deb.debian.org/debian"
HOST_CAS = "/etc/ssl/certs/ca-certificates.crt"
_TRIM = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
)


def base_tar() -> str:
    """The base's root filesystem as a tar (made now if it is not cached)."""
    if os.path.exists(TAR):
        return TAR
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is not installed; the test command installs it")
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        root = os.path.join(work, "root")
        done = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                root,
                MIRROR,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            pytest.fail(f"debootstrap failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        for path in _TRIM:
            target = os.path.join(root, path)
            if os.path.isdir(target):
                shutil.rmtree(target)
                os.makedirs(target)
        shutil.copy(HOST_CAS, os.path.join(root, "etc/ssl/certs/ca-certificates.crt"))
        with open(os.path.join(root, "etc/pip.conf"), "w") as f:
            f.write("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        partial = os.path.join(work, "base.tar")
        subprocess.run(["tar", "-C", root, "-cf", partial, "."], check=True)
        os.replace(partial, TAR)  # whole or absent: never a half-written cache
    return TAR
