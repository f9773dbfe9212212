"""podman push and pull against a real replica (vfs storage, no daemon)."""

from __future__ import annotations

import json
import tempfile

import pytest

from tests.clients.tools import run, skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout

pytestmark = pytest.mark.slow


def test_podman_push_and_pull(registry: LocalCluster, tmp_path) -> None:
    layout, manifest = image_layout(str(tmp_path / "layout"), "podman", layer_size=500_000)
    config_digest = json.loads(manifest.data)["config"]["digest"]
    # podman refuses a runroot path longer than 50 characters.
    runroot = tempfile.mkdtemp(prefix="qreg-podman-")
    podman = [
        "podman",
        "--root",
        str(tmp_path / "root"),
        "--runroot",
        runroot,
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
    ]
    run(*podman, "pull", f"oci:{layout}:latest")
    target = f"{registry.host}/podman/img:1"
    run(*podman, "push", "--tls-verify=false", config_digest.split(":")[1], f"docker://{target}")
    run(*podman, "rmi", "-a", "-f")
    run(*podman, "pull", "--tls-verify=false", target)
    image_id = run(*podman, "images", "--format", "{{.ID}}", "--no-trunc", target).strip()
    assert image_id == config_digest
    pushed = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{target}"))
    listed = run(*podman, "images", "--format", "{{.Digest}}", target).strip()
    assert listed == pushed["Digest"]
