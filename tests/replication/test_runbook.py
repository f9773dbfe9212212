"""The README's runbook, run as written: create, grow to three, lose one and replace it,
lose two and repair, back up and restore. Between its steps, an image pushed at the
start must stay pullable."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys

import httpx
import pytest

from tests.registry_auth import TokenAuth
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
PASSWORD = "drill-password"
ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


def runbook_steps() -> list[str]:
    with open(README) as f:
        text = f.read()
    section = text.split("<!-- runbook -->", 1)[1].split("<!-- /runbook -->", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def _run(step: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", step],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, (step.splitlines()[0], done.stdout[-2000:], done.stderr[-3000:])


def _pull(url: str, ca: str, digest: str) -> None:
    verify = ssl.create_default_context(cafile=ca)
    with httpx.Client(
        base_url=url, verify=verify, auth=TokenAuth("admin", PASSWORD, verify), timeout=30
    ) as client:
        r = client.get("/v2/drill/app/manifests/1", headers=ACCEPT)
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest, r.text
        for layer in r.json()["layers"]:
            assert client.get(f"/v2/drill/app/blobs/{layer['digest']}").status_code == 200


def test_the_readme_runbook_as_written(tmp_path) -> None:
    steps = runbook_steps()
    assert [s.splitlines()[0][:8] for s in steps] == [f"# step {n}" for n in range(1, 6)]
    drill = str(tmp_path / "drill")
    env = {
        **os.environ,
        "D": drill,
        "PW": PASSWORD,
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
    }
    ca = os.path.join(drill, "h1", "ca.crt")
    try:
        _run(steps[0], env)
        _run(steps[1], env)
        verify = ssl.create_default_context(cafile=ca)
        digest = push_image(
            "https://127.0.0.1:5000",
            "drill/app",
            "1",
            "drill",
            verify=verify,
            auth=TokenAuth("admin", PASSWORD, verify),
        ).digest
        _pull("https://127.0.0.2:5000", ca, digest)
        _run(steps[2], env)
        _pull("https://127.0.0.3:5000", ca, digest)
        _run(steps[3], env)
        for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            _pull(f"https://{host}:5000", ca, digest)
        _run(steps[4], env)
        _pull("https://127.0.0.1:5100", os.path.join(drill, "restored", "ca.crt"), digest)
    finally:
        subprocess.run(["pkill", "-f", drill])
        subprocess.run(
            [
                "bash",
                "-c",
                f"for i in $(seq 50); do pgrep -f {drill} >/dev/null "
                "|| exit 0; sleep 0.2; done; pkill -9 -f " + drill,
            ]
        )
