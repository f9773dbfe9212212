"""A chain of caches: an edge cache whose upstream is a regional cache, which fetches
from the cluster. The regional cache's certificate comes from a CA of its own, which
only the edge's `upstream_ca` trusts; grants are still checked with the cluster CA."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli import configfile, local_caches
from replica import pki
from replica.auth import grants
from replica.peers import trusting
from tests.caches.common import MIB, add_users, metric, pull, push_blob, push_image
from tests.cluster import LocalCluster, free_port_block
from tests.images import sha256

pytestmark = pytest.mark.slow


def _serve(
    directory: Path,
    name: str,
    upstreams: list[str],
    ca: str,
    upstream_ca: str,
    cert: tuple[bytes, bytes],
    verify: ssl.SSLContext,
) -> tuple[subprocess.Popen[bytes], str]:
    """A cache node with its own config and certificate, ready to serve."""
    directory.mkdir(parents=True)
    (directory / "cache.crt").write_bytes(cert[0])
    (directory / "cache.key").write_bytes(cert[1])
    port = free_port_block()
    config = str(directory / "cache.toml")
    configfile.write(
        config,
        {
            "cache": {
                "name": name,
                "data_dir": str(directory / "storage"),
                "upstreams": upstreams,
                "ca": ca,
                "upstream_ca": upstream_ca,
                "max_bytes": 256 * MIB,
            },
            "http": {
                "host": "127.0.0.1",
                "port": port,
                "cert": str(directory / "cache.crt"),
                "key": str(directory / "cache.key"),
            },
        },
    )
    process = local_caches.start(config, str(directory / "cache.log"))
    url = f"https://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(url + "/health", verify=verify).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"cache {name} did not start; see {directory / 'cache.log'}")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("chain")
    cluster = LocalCluster(str(root / "data"), tls=True).start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        files = pki.TlsFiles.under(os.path.join(cluster.data, "replica-0"))
        ca_cert, ca_key = Path(files.ca).read_bytes(), Path(files.ca_key).read_bytes()
        regional_cert, regional_key = pki.create_ca("Regional caches")
        regional_ca = root / "regional-ca.crt"
        regional_ca.write_bytes(regional_cert)
        sans = ["localhost", "127.0.0.1"]
        verify = trusting(cluster.ca)
        verify.load_verify_locations(str(regional_ca))
        region, region_url = _serve(
            root / "region",
            "region",
            [cluster.url],
            cluster.ca,
            "",
            pki.issue(regional_cert, regional_key, "region", sans),
            verify,
        )
        edge, edge_url = _serve(
            root / "edge",
            "edge",
            [region_url],
            cluster.ca,
            str(regional_ca),
            pki.issue(ca_cert, ca_key, "edge", sans),
            verify,
        )
        # The same edge without the regional bundle: it cannot trust its upstream.
        lost, lost_url = _serve(
            root / "lost",
            "lost",
            [region_url],
            cluster.ca,
            "",
            pki.issue(ca_cert, ca_key, "lost", sans),
            verify,
        )
        processes += [region, edge, lost]
        add_users(cluster, {"ahab": "read-only", "moby": "read-only"})
        with cluster.client() as admin:
            for body in (
                {"name": "region", "url": region_url, "region": "eu"},
                {"name": "edge", "url": edge_url, "region": "eu-west", "upstream": "region"},
            ):
                r = admin.post("/api/v0/content_caches", json=body)
                assert r.status_code == 201, r.text
            r = admin.post("/api/v0/content_caches/edge/users", json={"users": ["ahab", "moby"]})
            assert r.status_code == 200, r.text
            listed = {
                c["name"]: c for c in admin.get("/api/v0/content_caches").json()["content_caches"]
            }
            assert listed["edge"]["upstream"] == "region"
        yield {
            "cluster": cluster,
            "region": region_url,
            "edge": edge_url,
            "lost": lost_url,
            "ca_key": ca_key,
            "verify": verify,
        }
    finally:
        for process in processes:  # a cache holds nothing that a kill would lose
            process.kill()
            process.wait()
        cluster.stop()


def test_an_edge_cache_fetches_through_the_regional_cache(chain: dict, tmp_path) -> None:
    cluster: LocalCluster = chain["cluster"]
    verify = chain["verify"]
    manifest = push_image(cluster, str(tmp_path), "chain/app:1", "chain", layers=3, layer_size=MIB)
    blobs = 4  # three layers and the config
    first = pull(cluster, str(tmp_path), "ahab", "chain/app:1")
    assert first["manifest.json"] == sha256(manifest.data)
    fetches = "qreg_cache_upstream_fetches_total"
    assert metric(chain["edge"], fetches, verify) == blobs
    assert metric(chain["region"], fetches, verify) == blobs  # each blob crossed both hops
    # moby's pull stays at the edge: neither the region nor the cluster sends a blob.
    sent = metric(cluster.url, "qreg_blob_bytes_sent_total", verify)
    region_sent = metric(chain["region"], "qreg_cache_bytes_from_disk_total", verify)
    assert pull(cluster, str(tmp_path), "moby", "chain/app:1") == first
    assert metric(chain["edge"], fetches, verify) == blobs
    assert metric(chain["edge"], "qreg_cache_hits_total", verify) >= blobs
    assert metric(chain["region"], fetches, verify) == blobs
    assert metric(chain["region"], "qreg_cache_bytes_from_disk_total", verify) == region_sent
    assert metric(cluster.url, "qreg_blob_bytes_sent_total", verify) == sent


def test_a_cache_that_does_not_trust_its_upstream_fetches_nothing(chain: dict) -> None:
    cluster: LocalCluster = chain["cluster"]
    digest = push_blob(cluster, "chain/lost", os.urandom(4096))
    signer = grants.GrantSigner(chain["ca_key"])
    grant = signer.issue("ahab", "chain/lost", digest, "lost", via=["lost", "region"])
    r = httpx.get(
        f"{chain['lost']}/v2/chain/lost/blobs/{digest}",
        params={"grant": grant},
        verify=chain["verify"],
    )
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert metric(chain["lost"], "qreg_cache_upstream_errors_total", chain["verify"]) >= 1
    # A grant names its caches: the edge refuses lost's.
    r = httpx.get(
        f"{chain['edge']}/v2/chain/lost/blobs/{digest}",
        params={"grant": grant},
        verify=chain["verify"],
    )
    assert r.status_code == 401
    # The edge, which has the regional bundle, serves the same blob with a grant for it.
    grant = signer.issue("ahab", "chain/lost", digest, "edge", via=["edge", "region"])
    r = httpx.get(
        f"{chain['edge']}/v2/chain/lost/blobs/{digest}",
        params={"grant": grant},
        verify=chain["verify"],
    )
    assert r.status_code == 200 and sha256(r.content) == digest
