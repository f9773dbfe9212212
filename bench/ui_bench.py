#!/usr/bin/env python3
"""Web UI benchmark: time to first paint (Playwright, Debian's chromium) of the
repository list with 10,000 repositories and of a repository with 1,000 tags (median of
5, each in a fresh browser context), and each page's total transferred bytes. Three
replica processes; also saves the README's screenshots into docs/.

  .venv/bin/python bench/ui_bench.py [--repositories 10000] [--tags 1000] [--no-docs]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import sys
import tempfile

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, image_of, layer

HERE = os.path.dirname(os.path.abspath(__file__))


def api_token(cluster: LocalCluster, scope: str) -> dict[str, str]:
    r = httpx.get(
        cluster.url + "/auth/token",
        params={"service": "quorum-registry", "scope": scope},
        auth=("admin", cluster.admin_password),
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def fill(cluster: LocalCluster, repositories: int, tags: int) -> None:
    headers = api_token(cluster, "registry:api:*")
    with httpx.Client(base_url=cluster.url, headers=headers, timeout=60) as client:

        def create(n: int) -> None:
            r = client.post("/api/v0/repositories/admin", json={"name": f"repo{n:05d}"})
            assert r.status_code in (201, 409), r.text

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(repositories)))
    headers = api_token(cluster, "repository:admin/big:pull,push")
    blobs = [layer("big", 50_000)]
    config, manifest = image_of(blobs, label="big")
    with httpx.Client(base_url=cluster.url, headers=headers, timeout=60) as client:
        for blob in (config, *blobs):
            r = client.post(
                "/v2/admin/big/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
            )
            r.raise_for_status()

        def tag(n: int) -> None:
            r = client.put(
                f"/v2/admin/big/manifests/v{n:04d}",
                content=manifest.data,
                headers={"Content-Type": OCI_MANIFEST},
            )
            r.raise_for_status()

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(tag, range(tags)))


_PAINT = """() => {
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  const bytes = nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0);
  return {paint: paint ? paint.startTime : null, bytes};
}"""


def measure(browser, cluster: LocalCluster, path: str, runs: int = 5) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    paints, sizes = [], []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        sign_in(page, cluster)
        page.goto(cluster.url + path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(200)
        found = page.evaluate(_PAINT)
        paints.append(found["paint"])
        sizes.append(found["bytes"])
        context.close()
    return statistics.median(paints), int(statistics.median(sizes))


def sign_in(page, cluster: LocalCluster) -> None:  # type: ignore[no-untyped-def]
    page.goto(cluster.url + "/login")
    page.fill("#username", "admin")
    page.fill("#password", cluster.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(cluster.url + "/")


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=1_000)
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/*.png")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ui-bench-")
    cluster = LocalCluster(os.path.join(work, "data"), replicas=3).start()
    try:
        fill(cluster, args.repositories, args.tags)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            for label, path in (
                (f"repository list ({args.repositories} repositories)", "/repositories"),
                (f"repository with {args.tags} tags", "/repositories/admin/big"),
                ("dashboard", "/"),
                ("cluster", "/cluster"),
            ):
                paint, size = measure(browser, cluster, path)
                print(f"{label}: first paint {paint:.0f} ms (median of 5), {size / 1024:.1f} KiB")
            if not args.no_docs:
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                sign_in(page, cluster)
                docs = os.path.join(HERE, "..", "docs")
                os.makedirs(docs, exist_ok=True)
                page.goto(cluster.url + "/repositories/admin/big")
                page.screenshot(path=os.path.join(docs, "ui-repository.png"))
                page.goto(cluster.url + "/cluster")
                page.screenshot(path=os.path.join(docs, "ui-cluster.png"))
                context.close()
            browser.close()
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
