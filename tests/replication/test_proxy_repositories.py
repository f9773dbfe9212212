"""A proxy repository namespace in front of a real upstream registry (distribution 2.8,
Debian's docker-registry, with its access log on): pulls through it with skopeo fetch
each blob once from the upstream, later pulls do not touch the upstream, and with the
upstream stopped the cached tags stay pullable from any replica."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator

import pytest

from bench.registry_bench import distribution, serve_until_ready
from tests.caches.common import metric
from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout

pytestmark = pytest.mark.slow

_BLOB_GET = re.compile(r'"GET /v2/library/app/blobs/(sha256:[0-9a-f]{64})')


class Upstream:
    """distribution with its access log in a file."""

    def __init__(self, work: str) -> None:
        if shutil.which("docker-registry") is None:
            pytest.fail("distribution is not installed; the test command installs docker-registry")
        binary, config, self.port = distribution(work, "upstream", access_log=True)
        self.log_path = os.path.join(work, "upstream.log")
        self._log = open(self.log_path, "wb")
        self.process, self.url = serve_until_ready(
            [binary, "serve", config], self.port, "distribution", output=self._log
        )

    def requests(self) -> list[str]:
        with open(self.log_path) as f:
            return [line for line in f if '"GET /v2/library' in line or '"HEAD /v2/library' in line]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        self._log.close()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("proxy"))


@pytest.fixture(scope="module")
def upstream(work: str) -> Iterator[Upstream]:
    running = Upstream(work)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cluster(work: str) -> Iterator[LocalCluster]:
    running = LocalCluster(os.path.join(work, "data"), replicas=3).start()
    yield running
    running.stop()


def _pull(cluster: LocalCluster, replica: int, reference: str, into: str) -> str:
    host = cluster.urls[replica].removeprefix("http://")
    skopeo("copy", "--src-tls-verify=false", f"docker://{host}/{reference}", f"dir:{into}")
    with open(os.path.join(into, "manifest.json"), "rb") as f:
        return f.read().decode()


def test_a_proxy_namespace_fetches_once_and_serves_with_the_upstream_down(
    cluster: LocalCluster, upstream: Upstream, work: str
) -> None:
    layout, manifest = image_layout(os.path.join(work, "layout"), "proxied", layers=3,
                                    layer_size=400_000)  # fmt: skip
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest",
           f"docker://127.0.0.1:{upstream.port}/library/app:3")  # fmt: skip
    with cluster.client() as admin:
        proxy = {"kind": "proxy", "scope": "proxy/", "url": upstream.url, "allow_private": True}
        r = admin.post("/api/v0/webhooks", json=proxy)
        assert r.status_code == 201, r.text
    before = len(upstream.requests())

    # Two pulls at once through one replica: each blob crosses from the upstream once.
    pulled: list[str] = []
    threads = [
        threading.Thread(target=lambda n=n: pulled.append(
            _pull(cluster, 0, "proxy/library/app:3", os.path.join(work, f"first-{n}"))))
        for n in range(2)
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pulled) == 2 and pulled[0] == pulled[1] == manifest.data.decode()
    fetched = [m.group(1) for line in upstream.requests()[before:] if (m := _BLOB_GET.search(line))]
    assert len(fetched) == 4 and len(set(fetched)) == 4, fetched  # a config and three layers
    assert metric(cluster.urls[0], "qreg_import_blobs_total", False) == 4
    assert metric(cluster.urls[0], "qreg_import_bytes_total", False) >= 3 * 400_000

    # Again, from another replica: served from the cluster, the upstream untouched (a
    # tag is checked upstream on a replica's first pull of it, then once an hour).
    _pull(cluster, 1, "proxy/library/app:3", os.path.join(work, "second-a"))
    seen = len(upstream.requests())
    _pull(cluster, 1, "proxy/library/app:3", os.path.join(work, "second-b"))
    _pull(cluster, 1, f"proxy/library/app@{manifest.digest}", os.path.join(work, "second-c"))
    assert len(upstream.requests()) == seen

    # Read-only: upstream is its only source. Nothing malformed is passed on to it.
    with cluster.client() as admin:
        r = admin.post("/v2/proxy/library/app/blobs/uploads/")
        assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text
        assert admin.get("/v2/proxy/library/app/manifests/x%3Fn=1").status_code == 404
        assert admin.get("/v2/proxy/library/app/blobs/sha256:..%2F..").status_code in (400, 404)
    assert len(upstream.requests()) == seen

    # The upstream stopped: what is cached stays pullable, from a replica that never
    # checked the tag; what is not cached is UNAVAILABLE.
    upstream.stop()
    assert _pull(cluster, 2, "proxy/library/app:3", os.path.join(work, "down")) == pulled[0]
    assert metric(cluster.urls[2], "qreg_proxy_served_stale_total", False) == 1
    with cluster.client(2) as admin:
        r = admin.get("/v2/proxy/library/other/manifests/1")
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE", r.text
