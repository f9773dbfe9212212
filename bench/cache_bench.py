#!/usr/bin/env python3
"""Cache benchmark: pulling a 10 x 16 MiB image at a far site behind a slow link.

The far site is a network namespace joined to the cluster's by a veth pair limited
with tc tbf (default 50 Mbit/s) plus a relay that adds a one-way delay (default
20 ms). skopeo runs in the far site and pulls, in order:
  - direct: a user without a cache pulls straight from the cluster over the link;
  - cold:   a user whose cache is the far site's pulls at the cluster's URL; the
            blobs are redirected to the cache, which fetches them over the link;
  - warm:   the same pull again, blobs from the cache's disk.
With --reference, distribution 2.8 runs in the far site as a pull-through mirror of
the cluster (its `proxy` mode; clients must pull at the mirror's own URL) and is
measured cold and warm the same way.

Needs root and iproute2. Only the namespaces it creates are addressed.

    .venv/bin/python bench/cache_bench.py [--reference] [--rate-mbit 50] [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.registry_bench import distribution, print_table
from tests.caches.common import MIB, push_image
from tests.caches.far_site import FarSite
from tests.clients.tools import run

IMAGE = "far/app:1"


def start_mirror(site: FarSite, work: str) -> tuple[subprocess.Popen[bytes], int]:
    """distribution 2.8 as a pull-through mirror of the cluster, in the far site."""
    binary, config, port = distribution(
        work,
        "mirror",
        f"proxy:\n  remoteurl: {site.cluster.url}\n  username: admin\n"
        f"  password: {site.cluster.admin_password}\n",
    )
    process = subprocess.Popen(
        site.link.in_edge(["env", f"SSL_CERT_FILE={site.cluster.ca}", binary, "serve", config]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = site.link.in_edge(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}/v2/"])
    for _ in range(100):
        if subprocess.run(probe).returncode == 0:
            return process, port
        time.sleep(0.1)
    sys.exit("the distribution mirror did not start")


def mirror_pull(site: FarSite, port: int) -> float:
    with scratch() as out:
        started = time.monotonic()
        run(
            *site.link.in_edge(
                [
                    "skopeo",
                    "--insecure-policy",
                    "copy",
                    "--src-tls-verify=false",
                    f"docker://127.0.0.1:{port}/{IMAGE}",
                    f"dir:{out}",
                ]
            ),
            timeout=600,
        )
        return time.monotonic() - started


def pull(site: FarSite, user: str) -> float:
    with scratch() as out:
        return site.pull(user, IMAGE, out)[0]


@contextlib.contextmanager
def scratch() -> Iterator[str]:
    """Where skopeo writes a pulled image: memory, so that the client's disk (writeback
    of earlier pulls) does not blur what is measured, which is the link and the cache."""
    path = tempfile.mkdtemp(prefix="qreg-cache-bench-pull-", dir="/dev/shm")
    try:
        yield os.path.join(path, "image")
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also measure distribution 2.8 as a pull-through mirror",
    )
    parser.add_argument("--rate-mbit", type=int, default=50, help="the link's rate (Mbit/s)")
    parser.add_argument(
        "--delay-ms", type=float, default=20.0, help="one-way delay added to the link (ms)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the cache benchmark needs root (network namespaces, tc)")
    work = tempfile.mkdtemp(prefix="qreg-cache-bench-")
    mirror = None
    try:
        with FarSite(work, args.rate_mbit, args.delay_ms) as site:
            push_image(site.cluster, work, IMAGE, "cache-bench", layers=10, layer_size=16 * MIB)
            ours: dict[str, float] = {}
            print("direct pull over the link", file=sys.stderr, flush=True)
            ours["direct pull, no cache (s)"] = pull(site, "near-user")
            print("cold pull through the cache", file=sys.stderr, flush=True)
            ours["cold pull through cache (s)"] = pull(site, "far-user")
            print("warm pull through the cache", file=sys.stderr, flush=True)
            ours["warm pull through cache (s)"] = pull(site, "far-user")
            columns = {"quorum": ours}
            if args.reference:
                mirror, port = start_mirror(site, work)
                print("distribution mirror: cold, then warm", file=sys.stderr, flush=True)
                theirs = {"direct pull, no cache (s)": ours["direct pull, no cache (s)"]}
                theirs["cold pull through cache (s)"] = mirror_pull(site, port)
                theirs["warm pull through cache (s)"] = mirror_pull(site, port)
                columns["distribution"] = theirs
            size = 10 * 16 * MIB
            print(
                f"link: {args.rate_mbit} Mbit/s, {2 * args.delay_ms:.0f} ms round trip; "
                f"image: 10 x 16 MiB ({size / MIB:.0f} MiB)"
            )
            print_table(columns)
            for key, seconds in ours.items():
                print(f"  {key.split(' (')[0]}: {size / MIB / seconds:.1f} MiB/s")
            if mirror is not None:
                mirror.terminate()
                mirror.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
