#!/usr/bin/env python3
"""Push mirroring benchmark: a 10 x 16 MiB image mirrored from three replicas to
distribution 2.8 (a new repository each run, so every blob goes), against `skopeo
copy` of the same image between the same two registries; medians of --runs.

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
                # skopeo remembers where blobs are and mounts them from a repository it
                # copied to before: forget, so every blob goes as with the mirror.
                for cache in BLOB_INFO_CACHES:
                    if os.path.exists(cache):
                        os.remove(cache)
                started = time.monotonic()
                skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                       f"--src-creds={creds}", f"docker://{ours}/bench/app:run{run}",
                       f"docker://{theirs}/copy/run{run}:1")  # fmt: skip
                copied.append(time.monotonic() - started)
                print(f"run {run}: mirror {mirrored[-1]:.2f} s, skopeo {copied[-1]:.2f} s",
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
    }
    print_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
