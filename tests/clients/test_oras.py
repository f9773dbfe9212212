"""The oras Python client: artifacts, and an artifact with a subject found through referrers."""

from __future__ import annotations

import json
import os

import httpx
import oras.client
import oras.oci
import pytest

from tests.cluster import LocalCluster

pytestmark = pytest.mark.slow


def _signed_in(registry: LocalCluster, repository: str) -> oras.client.OrasClient:
    """oras-py keeps the first token it gets and never asks again with the scope of a
    later challenge, so a push that starts with a HEAD (pull) fails on its POST (the
    same trap as helm on quay.io, helm/helm#32156). Like helm's fix, ask for pull,push
    up front."""
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    client.auth.set_basic_auth("admin", registry.admin_password)
    client.auth.set_token_auth(
        registry.auth.token(
            registry.url + "/auth/token", "quorum-registry", [f"repository:{repository}:pull,push"]
        )
    )
    return client


def test_push_and_pull_artifact(registry: LocalCluster, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    payload = os.urandom(200_000)
    (tmp_path / "artifact.bin").write_bytes(payload)
    client = _signed_in(registry, "oras/art")
    client.push(files=["artifact.bin"], target=f"{registry.host}/oras/art:v1", quiet=True)
    out = tmp_path / "out"
    paths = client.pull(target=f"{registry.host}/oras/art:v1", outdir=str(out))
    assert [os.path.basename(p) for p in paths] == ["artifact.bin"]
    assert (out / "artifact.bin").read_bytes() == payload


def test_artifact_with_subject_is_found_through_referrers(
    registry: LocalCluster, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.txt").write_text("the application")
    (tmp_path / "sbom.json").write_text('{"packages": []}')
    client = _signed_in(registry, "oras/app")
    client.push(files=["app.txt"], target=f"{registry.host}/oras/app:v1", quiet=True)
    subject_manifest = client.get_manifest(f"{registry.host}/oras/app:v1")
    subject = oras.oci.Subject.from_manifest(subject_manifest)
    client.push(
        files=["sbom.json"], target=f"{registry.host}/oras/app:sbom", subject=subject, quiet=True
    )
    r = httpx.get(f"{registry.url}/v2/oras/app/referrers/{subject.digest}", auth=registry.auth)
    assert r.status_code == 200
    referrers = r.json()["manifests"]
    sbom = client.get_manifest(f"{registry.host}/oras/app:sbom")
    sbom_digest = httpx.head(
        f"{registry.url}/v2/oras/app/manifests/sbom", auth=registry.auth
    ).headers["Docker-Content-Digest"]
    assert [m["digest"] for m in referrers] == [sbom_digest]
    assert sbom["subject"]["digest"] == subject.digest
    # The subject digest oras computes is the registry's digest of the stored manifest.
    stored = httpx.get(
        f"{registry.url}/v2/oras/app/manifests/v1",
        auth=registry.auth,
        headers={"Accept": sbom["subject"]["mediaType"]},
    )
    assert stored.headers["Docker-Content-Digest"] == subject.digest, json.dumps(subject_manifest)
