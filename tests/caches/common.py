"""What the cache tests and bench/cache_bench.py share: the users' password, a metric
reader, accounts, and images pushed and pulled with skopeo over the cluster's TLS."""

from __future__ import annotations

import os
import shutil

import httpx

from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster
from tests.images import Blob, image_layout, sha256

PASSWORD = "a good password"
MIB = 1 << 20


def metric(url: str, name: str, verify: object) -> float:
    """A Prometheus metric's value, summed over its labels (0 if absent)."""
    text = httpx.get(url + "/metrics", verify=verify).text  # type: ignore[arg-type]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def add_users(cluster: LocalCluster, roles: dict[str, str]) -> None:
    """Accounts with PASSWORD and these global roles."""
    with cluster.client() as admin:
        for user, role in roles.items():
            r = admin.post(
                "/api/v0/accounts", json={"name": user, "password": PASSWORD, "global_role": role}
            )
            assert r.status_code == 201, r.text


def cert_dir(cluster: LocalCluster, parent: str) -> str:
    """PARENT/certs holding the cluster CA, for skopeo's --src/dest-cert-dir."""
    certs = os.path.join(parent, "certs")
    os.makedirs(certs, exist_ok=True)
    shutil.copy(cluster.ca, os.path.join(certs, "ca.crt"))
    return certs


def push_image(
    cluster: LocalCluster, parent: str, ref: str, seed: str, layers: int, layer_size: int
) -> Blob:
    """An image of LAYERS random layers pushed as the admin; its manifest."""
    layout, manifest = image_layout(
        os.path.join(parent, f"layout-{seed}"), seed, layers=layers, layer_size=layer_size
    )
    skopeo(
        "copy",
        "--dest-cert-dir",
        cert_dir(cluster, parent),
        "--dest-creds",
        f"admin:{cluster.admin_password}",
        f"oci:{layout}:latest",
        f"docker://{cluster.host}/{ref}",
    )
    return manifest


def pull(cluster: LocalCluster, parent: str, user: str, ref: str) -> dict[str, str]:
    """USER pulls REF with skopeo: the digest of every file it wrote."""
    out = os.path.join(parent, f"pulled-{user}")
    skopeo(
        "copy",
        "--src-cert-dir",
        cert_dir(cluster, parent),
        "--src-creds",
        f"{user}:{PASSWORD}",
        f"docker://{cluster.host}/{ref}",
        f"dir:{out}",
    )
    return dir_digests(out)


def push_blob(cluster: LocalCluster, repo: str, data: bytes) -> str:
    r = httpx.post(
        f"{cluster.url}/v2/{repo}/blobs/uploads/",
        auth=cluster.auth,
        verify=cluster.verify,
        params={"digest": sha256(data)},
        content=data,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return sha256(data)
