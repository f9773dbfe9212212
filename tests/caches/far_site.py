"""A cluster on the host and a far site behind a slow link: the site's users and their
cache live in a network namespace (tests/slow_link.py). Used by the slow-link test
and by bench/cache_bench.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from cli import local_caches
from tests.caches.common import PASSWORD, add_users, cert_dir, metric
from tests.clients.tools import dir_digests, run
from tests.cluster import LocalCluster, free_port_block
from tests.slow_link import SlowLink

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = "far"


class FarSite:
    """`far-user` has chosen the far site's cache; `near-user` has no cache."""

    def __init__(self, data: str, rate_mbit: int = 50, delay_ms: float = 20.0) -> None:
        self.data = data
        self.cluster = LocalCluster(os.path.join(data, "cluster"), tls=True)
        self.link = SlowLink(rate_mbit, delay_ms)
        self.cache_port = free_port_block(1)
        self.cache_url = f"https://127.0.0.1:{self.cache_port}"
        self._cache: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FarSite:
        self.link.__enter__()
        try:
            self.cluster.start()
            self.link.reach_host_port(self.cluster.port)
            self.link.expose_edge_port(self.cache_port)
            self.link.start_relay()
            self._start_cache()
            self._add_users()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start_cache(self) -> None:
        config = local_caches.write_config(
            self.cluster.data, CACHE, self.cache_port, [self.cluster.url], False, 4 << 30
        )
        log = open(os.path.join(self.data, "cache.log"), "ab")
        with log:
            self._cache = subprocess.Popen(
                self.link.in_edge(
                    [sys.executable, "-m", "cli.main", "cache", "serve", "--config", config]
                ),
                cwd=_ROOT,
                stdout=log,
                stderr=log,
            )
        with self.cluster.client() as admin:
            r = admin.post(
                "/api/v0/content_caches",
                json={"name": CACHE, "url": self.cache_url, "region": "far"},
            )
            assert r.status_code == 201, r.text
            deadline = time.monotonic() + 30  # until the cluster has seen the cache up
            while time.monotonic() < deadline:
                listed = admin.get("/api/v0/content_caches").json()["content_caches"]
                if listed and listed[0]["up"]:
                    return
                time.sleep(0.5)
        raise RuntimeError("the cluster never saw the far cache up")

    def _add_users(self) -> None:
        add_users(self.cluster, {"far-user": "read-only", "near-user": "read-only"})
        with self.cluster.client() as admin:
            r = admin.patch("/api/v0/accounts/far-user/settings", json={"cache": CACHE})
            assert r.status_code == 200, r.text

    def pull(self, user: str, ref: str, out: str) -> tuple[float, dict[str, str]]:
        """skopeo in the far site pulls at the cluster's URL: (seconds, file digests)."""
        certs = cert_dir(self.cluster, self.data)
        started = time.monotonic()
        run(
            *self.link.in_edge(
                [
                    "skopeo",
                    "--insecure-policy",
                    "copy",
                    "--src-cert-dir",
                    certs,
                    "--src-creds",
                    f"{user}:{PASSWORD}",
                    f"docker://{self.cluster.host}/{ref}",
                    f"dir:{out}",
                ]
            ),
            timeout=600,
        )
        return time.monotonic() - started, dir_digests(out)

    def cache_metric(self, name: str) -> float:
        return metric(self.cache_url, name, self.cluster.verify)

    def cluster_metric(self, name: str) -> float:
        return metric(self.cluster.url, name, self.cluster.verify)

    def __exit__(self, *exc: object) -> None:
        if self._cache is not None:
            self._cache.terminate()
            try:
                self._cache.wait(10)
            except subprocess.TimeoutExpired:
                self._cache.kill()
                self._cache.wait()
        self.cluster.stop()
        self.link.__exit__()
