#!/usr/bin/env python3
"""Mirroring benchmark, three replicas and distribution 2.8 with a 10 x 16 MiB image
(new repositories each run, so every blob goes); medians of --runs:
- push mirror (ours to distribution) against `skopeo copy` between the two;
- pull mirror (distribution into ours) against `skopeo copy` the other way;
- a proxy namespace: the first pull through it (every blob fetched from distribution)
  and the second, against a pull straight from distribution.

  .venv/bin/python bench/mirror_bench.py [--runs 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.registry_bench import distribution, print_figures, serve_until_ready, skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout

MiB = 1 << 20
BLOB_INFO_CACHES = (
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
    "/var/lib/containers/cache/blob-info-cache-v1.sqlite",
    os.path.expanduser("~/.local/share/containers/cache/blob-info-cache-v1.sqlite"),
)


def _forget() -> None:
    """skopeo remembers where blobs are and mounts them from a repository it copied to
    before: forget, so every blob goes as with the mirror."""
    for cache in BLOB_INFO_CACHES:
        if os.path.exists(cache):
            os.remove(cache)


def _timed(*args: str) -> float:
    started = time.monotonic()
    skopeo(*args)
    return time.monotonic() - started


def _pull_mirror(admin: httpx.Client, source: str, run: int) -> float:
    """Seconds the pull mirror's copy of `source`'s one tag took (its log)."""
    r = admin.post("/api/v0/webhooks", json={
        "kind": "pull_mirror", "scope": f"bench/pulled{run}", "allow_private": True,
        "url": source})  # fmt: skip
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 300
    while True:
        log = admin.get(f"/api/v0/webhooks/{r.json()['id']}").json()["deliveries"]
        if log:
            assert log[0]["status"] == "delivered", log
            return float(log[0]["millis"]) / 1000
        assert time.monotonic() < deadline, "the pull mirror copied nothing"
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-mirror-bench-")
    binary, config, port = distribution(work, "target")
    target, target_url = serve_until_ready([binary, "serve", config], port, "distribution")
    cluster = LocalCluster(os.path.join(work, "qreg"), replicas=3).start()
    layout, _ = image_layout(os.path.join(work, "layout"), "mirror", layers=10, layer_size=16 * MiB)
    size_mib = 10 * 16
    ours = cluster.host
    theirs = target_url.removeprefix("http://")
    mirrored, copied = [], []
    pulled_in, copied_in, cold, warm, direct = [], [], [], [], []
    creds = f"admin:{cluster.admin_password}"
    try:
        with cluster.client() as admin:
            for run in range(args.runs):
                r = admin.post("/api/v0/webhooks", json={
                    "kind": "push_mirror", "scope": "bench/app", "allow_private": True,
                    "url": f"{target_url}/mirror/run{run}",
                })  # fmt: skip
                assert r.status_code == 201, r.text
                mirror = r.json()["id"]
                skopeo("copy", "--dest-tls-verify=false", f"--dest-creds={creds}",
                       f"oci:{layout}:latest", f"docker://{ours}/bench/app:run{run}")  # fmt: skip
                deadline = time.monotonic() + 300
                while True:
                    log = admin.get(f"/api/v0/webhooks/{mirror}").json()["deliveries"]
                    if log and log[0]["status"] == "delivered":
                        mirrored.append(log[0]["millis"] / 1000)
                        break
                    assert time.monotonic() < deadline, log
                    time.sleep(0.2)
                assert admin.delete(f"/api/v0/webhooks/{mirror}").status_code == 204
                _forget()
                started = time.monotonic()
                skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                       f"--src-creds={creds}", f"docker://{ours}/bench/app:run{run}",
                       f"docker://{theirs}/copy/run{run}:1")  # fmt: skip
                copied.append(time.monotonic() - started)
                # Copies in: a new image each (the cluster holds none of its blobs).
                for name in ("pulled", "skopeo", "proxied"):
                    fresh, _ = image_layout(os.path.join(work, f"{name}{run}"), f"{name}{run}",
                                            layers=10, layer_size=16 * MiB)  # fmt: skip
                    skopeo("copy", "--dest-tls-verify=false", f"oci:{fresh}:latest",
                           f"docker://{theirs}/{name}/run{run}:1")  # fmt: skip
                    shutil.rmtree(fresh)
                pulled_in.append(_pull_mirror(admin, f"{target_url}/pulled/run{run}", run))
                _forget()
                copied_in.append(_timed("copy", "--src-tls-verify=false",
                                        "--dest-tls-verify=false", f"--dest-creds={creds}",
                                        f"docker://{theirs}/skopeo/run{run}:1",
                                        f"docker://{ours}/bench/skopeo-in{run}:1"))  # fmt: skip
                r = admin.post("/api/v0/webhooks", json={
                    "kind": "proxy", "scope": f"hub{run}/", "url": target_url,
                    "allow_private": True})  # fmt: skip
                assert r.status_code == 201, r.text
                for into, times in (("cold", cold), ("warm", warm)):
                    times.append(_timed("copy", "--src-tls-verify=false", f"--src-creds={creds}",
                                        f"docker://{ours}/hub{run}/proxied/run{run}:1",
                                        f"dir:{work}/{into}{run}"))  # fmt: skip
                direct.append(
                    _timed(
                        "copy",
                        "--src-tls-verify=false",
                        f"docker://{theirs}/proxied/run{run}:1",
                        f"dir:{work}/d{run}",
                    )
                )
                print(f"run {run}: push mirror {mirrored[-1]:.2f} s, skopeo {copied[-1]:.2f} s; "
                      f"pull mirror {pulled_in[-1]:.2f} s, skopeo {copied_in[-1]:.2f} s; proxy "
                      f"{cold[-1]:.2f} s then {warm[-1]:.2f} s, direct {direct[-1]:.2f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
    finally:
        cluster.stop()
        target.terminate()
        target.wait()
        shutil.rmtree(work, ignore_errors=True)
    mirror_s, skopeo_s = statistics.median(mirrored), statistics.median(copied)
    figures = {
        "image_mib": size_mib,
        "mirror_s": round(mirror_s, 2),
        "mirror_mib_s": round(size_mib / mirror_s, 1),
        "skopeo_copy_s": round(skopeo_s, 2),
        "skopeo_mib_s": round(size_mib / skopeo_s, 1),
        "ratio_skopeo_time_to_mirror_time": round(skopeo_s / mirror_s, 2),
        "pull_mirror_s": round(statistics.median(pulled_in), 2),
        "skopeo_copy_in_s": round(statistics.median(copied_in), 2),
        "ratio_skopeo_time_to_pull_mirror_time": round(
            statistics.median(copied_in) / statistics.median(pulled_in), 2
        ),
        "proxy_first_pull_s": round(statistics.median(cold), 2),
        "proxy_second_pull_s": round(statistics.median(warm), 2),
        "direct_pull_from_distribution_s": round(statistics.median(direct), 2),
    }
    print_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
