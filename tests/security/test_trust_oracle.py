"""Notary's own server as the oracle: one scripted session of publishes, good and bad,
against the `notary-server` of Debian's notary package and against a replica; every
step must get the same status and error code from both, and leave the same versions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import httpx
import pytest

from tests import tuf
from tests.cluster import free_port_block
from tests.unit.replica.in_process import replica

pytestmark = pytest.mark.slow

GUN = "registry.example:5000/lib/app"
TUF = f"/v2/{GUN}/_trust/tuf/"


@pytest.fixture
def notary_server(tmp_path):
    if shutil.which("notary-server") is None:
        pytest.fail("notary-server is not installed; the test command installs notary")
    port = free_port_block()
    config = tmp_path / "server.json"
    settings = {
        "server": {"http_addr": f"127.0.0.1:{port}"},
        "trust_service": {"type": "local"},
        "logging": {"level": "error"},
        "storage": {"backend": "memory"},
    }
    config.write_text(json.dumps(settings))
    log = open(tmp_path / "notary-server.log", "wb")
    process = subprocess.Popen(
        ["notary-server", "-config", str(config)], stdout=log, stderr=log, cwd=tmp_path
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/v2/").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "notary-server did not start"
        time.sleep(0.1)
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client
    process.terminate()
    process.wait(timeout=10)
    log.close()


def session(client) -> list[tuple[str, int, str, int]]:
    """(step, status, error code, stored targets version) of each step."""
    repo = tuf.Repository(GUN)
    repo.root_key, repo.targets_key, repo.snapshot_key = KEYS
    steps: list[tuple[str, int, str, int]] = []

    def publish(step: str, files: dict[str, bytes]) -> None:
        r = client.post(TUF, files=tuf.multipart(files))
        code = r.json()["errors"][0]["code"] if r.status_code >= 400 else ""
        got = client.get(TUF + "targets.json")
        version = got.json()["signed"]["version"] if got.status_code == 200 else 0
        steps.append((step, r.status_code, code, version))

    stamp = client.get(TUF + "timestamp.key").json()
    root = repo.root(stamp)
    empty = repo.targets({}, 1)
    publish("targets without a root", {"targets": empty})
    publish(
        "init",
        {
            "root": root,
            "targets": empty,
            "snapshot": repo.snapshot({"root": root, "targets": empty}, 1),
        },
    )
    entries = {"v1": tuf.target("sha256:" + "ab" * 32, 10)}

    def with_snapshot(
        targets: bytes, version: int, others: bytes | None = None
    ) -> dict[str, bytes]:
        listed = {"root": root, "targets": others or targets}
        return {"targets": targets, "snapshot": repo.snapshot(listed, version)}

    publish("foreign signature", with_snapshot(repo.targets(entries, 2, signer=tuf.Key()), 2))
    publish("same version again", with_snapshot(repo.targets(entries, 1), 2))
    publish(
        "snapshot of other targets", with_snapshot(repo.targets(entries, 2), 2, repo.targets({}, 2))
    )
    publish("no snapshot, client holds its key", {"targets": repo.targets(entries, 2)})
    publish(
        "undelegated role",
        {"targets/releases": repo.targets(entries, 1, role="targets/releases", signer=tuf.Key())},
    )
    good = repo.targets(entries, 2, delegations={"targets/releases": RELEASES})
    publish("targets v2 with a delegation", with_snapshot(good, 2))
    signed = repo.targets(entries, 1, role="targets/releases", signer=RELEASES)
    documents = {"root": root, "targets": good, "targets/releases": signed}
    publish(
        "the delegation publishes",
        {"targets/releases": signed, "snapshot": repo.snapshot(documents, 3)},
    )
    publish("malformed JSON", {"targets": b"{"})
    r = client.get(TUF + "3.snapshot.json")
    steps.append(("snapshot by version", r.status_code, "", 0))
    r = client.get(TUF + "9.snapshot.json")
    steps.append(("missing version", r.status_code, r.json()["errors"][0]["code"], 0))
    return steps


KEYS = (tuf.Key(common_name=GUN), tuf.Key(), tuf.Key())
RELEASES = tuf.Key(common_name="releases")


def test_a_session_gets_the_answers_notary_server_gives(notary_server, tmp_path) -> None:
    expected = session(notary_server)
    with replica(os.path.join(tmp_path, "replica")) as ours:
        got = session(ours)
    assert got == expected
    # The oracle agrees with itself on what a good session is.
    assert [s for s in expected if s[1] == 200][0][0] == "init"
