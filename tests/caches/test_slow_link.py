"""Pulls over a slow link (50 Mbit/s, 40 ms round trip): a far user pulls at the
cluster's URL and gets the blobs from the cache beside them. The timings are the
benchmark's business (bench/cache_bench.py); this checks where the bytes came from."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.caches.common import MIB, push_image
from tests.caches.far_site import FarSite
from tests.images import sha256

pytestmark = pytest.mark.slow

LAYER = 4 * MIB  # ~7 s a pull over the link: where the bytes come from, not how fast


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the slow-link test needs root and iproute2; the test command installs it")
    with FarSite(str(tmp_path_factory.mktemp("far"))) as site:
        yield site


def test_a_far_user_pulls_through_the_cache_beside_them(site: FarSite, tmp_path) -> None:
    manifest = push_image(
        site.cluster, str(tmp_path), "far/app:1", "far", layers=10, layer_size=LAYER
    )
    blobs = 11  # ten layers and the config

    # Straight from the cluster over the link: a user without a cache.
    _, direct = site.pull("near-user", "far/app:1", str(tmp_path / "direct"))
    assert direct["manifest.json"] == sha256(manifest.data)
    assert site.cluster_metric("qreg_cache_redirects_total") == 0

    # Cold: every blob is redirected, and the cache fetches each one once.
    _, cold = site.pull("far-user", "far/app:1", str(tmp_path / "cold"))
    assert cold == direct
    assert site.cluster_metric("qreg_cache_redirects_total") == blobs
    assert site.cache_metric("qreg_cache_upstream_fetches_total") == blobs
    assert site.cache_metric("qreg_cache_bytes_from_upstream_total") >= 10 * LAYER

    # Warm: the cluster sends the manifest and no blob bytes; the cache sends them all.
    sent = site.cluster_metric("qreg_blob_bytes_sent_total")
    _, warm = site.pull("far-user", "far/app:1", str(tmp_path / "warm"))
    assert warm == direct
    assert site.cluster_metric("qreg_blob_bytes_sent_total") == sent
    assert site.cache_metric("qreg_cache_upstream_fetches_total") == blobs
    assert site.cache_metric("qreg_cache_hits_total") >= blobs
