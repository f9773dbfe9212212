"""`qreg` run as a user runs it, for tests: a subprocess of this interpreter."""

from __future__ import annotations

import subprocess
import sys


def qreg(*args: str, env: dict[str, str], stdin: str = "", ok: bool = True) -> str:
    """Its output if it succeeded (`ok`), or what it said on stderr if it failed as
    expected; the test fails otherwise."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout
    assert done.returncode != 0, done.stdout
    return done.stderr
