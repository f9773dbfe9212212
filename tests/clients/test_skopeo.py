"""skopeo against a real replica: copy in and out, --all, inspect, list-tags, delete."""

from __future__ import annotations

import json
import os

import pytest

from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout, multi_platform_layout

pytestmark = pytest.mark.slow


def test_copy_in_and_out(registry: LocalCluster, tmp_path) -> None:
    layout, manifest = image_layout(str(tmp_path / "layout"), "skopeo-copy", layer_size=2_000_000)
    dest = f"docker://{registry.host}/skopeo/copy:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", dest)
    out = str(tmp_path / "out")
    skopeo("copy", "--src-tls-verify=false", dest, f"dir:{out}")
    files = dir_digests(out)
    # skopeo verifies every blob on the way out; the manifest comes back byte for byte.
    assert files["manifest.json"] == manifest.digest
    for layer in json.loads(manifest.data)["layers"]:
        assert files[layer["digest"].split(":")[1]] == layer["digest"]


def test_copy_all_of_a_two_platform_index(registry: LocalCluster, tmp_path) -> None:
    layout, index = multi_platform_layout(str(tmp_path / "layout"), "skopeo-all")
    dest = f"docker://{registry.host}/skopeo/multi:v1"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:latest", dest)
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", dest))
    assert raw == json.loads(index.data)
    out = str(tmp_path / "out")
    skopeo("copy", "--all", "--src-tls-verify=false", dest, f"oci:{out}:copy")
    for child in raw["manifests"]:
        assert os.path.exists(os.path.join(out, "blobs", "sha256", child["digest"].split(":")[1]))
    arm = json.loads(skopeo("inspect", "--tls-verify=false", "--override-arch", "arm64", dest))
    assert arm["Architecture"] == "arm64"


def test_inspect_list_tags_delete(registry: LocalCluster, tmp_path) -> None:
    layout, manifest = image_layout(str(tmp_path / "layout"), "skopeo-tags")
    for tag in ("1.0", "1.1"):
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:latest",
            f"docker://{registry.host}/skopeo/tags:{tag}",
        )
    info = json.loads(
        skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/skopeo/tags:1.0")
    )
    assert info["Digest"] == manifest.digest and info["Architecture"] == "amd64"
    tags = json.loads(
        skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/skopeo/tags")
    )
    assert tags["Tags"] == ["1.0", "1.1"]
    skopeo(
        "delete", "--tls-verify=false", f"docker://{registry.host}/skopeo/tags@{manifest.digest}"
    )
    tags = json.loads(
        skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/skopeo/tags")
    )
    assert tags["Tags"] == []
