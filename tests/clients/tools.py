"""Running real registry clients against a test registry."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess


def run(*argv: str, timeout: float = 180) -> str:
    """Run a client; a missing client is a failure, not a skip."""
    if shutil.which(argv[0]) is None:
        raise AssertionError(f"{argv[0]} is not installed; the test command installs it")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def skopeo(*args: str) -> str:
    return run("skopeo", "--insecure-policy", *args)


def dir_digests(path: str) -> dict[str, str]:
    """sha256 of every file skopeo wrote into a dir: destination, by file name."""
    out = {}
    for name in os.listdir(path):
        with open(os.path.join(path, name), "rb") as f:
            out[name] = "sha256:" + hashlib.sha256(f.read()).hexdigest()
    return out


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)
