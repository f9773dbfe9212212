#!/usr/bin/env python3
"""`docker pull` of a 10 x 16 MiB image from a three-replica cluster (HTTPS, token
auth, the CA in dockerd's certs.d) and from distribution 2.8 (as Debian ships it:
plain HTTP, no auth), in one run, through one dockerd of the benchmark's own. Median
of three pulls each, the image removed between pulls.

    .venv/bin/python bench/docker_bench.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.registry_bench import start_distribution
from tests.clients.dockerd import Docker
from tests.cluster import LocalCluster
from tests.images import image_layout

MiB = 1 << 20
ROUNDS = 3


def push(layout: str, destination: str, *flags: str) -> None:
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", *flags, f"oci:{layout}:latest", destination],
        check=True,
        capture_output=True,
    )


def pull_seconds(docker: Docker, reference: str) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        docker.run("pull", "--quiet", reference)
        times.append(time.perf_counter() - start)
        docker.run("rmi", reference)
    return statistics.median(times)


def main() -> int:
    work = tempfile.mkdtemp(prefix="qreg-docker-bench-")
    cluster = LocalCluster(os.path.join(work, "qreg"), replicas=3, tls=True)
    reference = None
    docker = None
    try:
        print("preparing a 10 x 16 MiB image", file=sys.stderr, flush=True)
        layout, _ = image_layout(
            os.path.join(work, "layout"), "docker-bench", layers=10, layer_size=16 * MiB
        )
        cluster.start()
        reference, ref_url = start_distribution(work)
        ref_host = ref_url.removeprefix("http://")
        hosts = [u.split("://")[1] for u in cluster.urls]
        docker = Docker(
            os.path.join(work, "docker"),
            insecure=[ref_host],
            trusted_cas={h: cluster.ca for h in hosts},
        )
        certs = os.path.join(work, "certs")
        os.makedirs(certs)
        shutil.copy(cluster.ca, os.path.join(certs, "ca.crt"))
        creds = f"admin:{cluster.admin_password}"
        push(layout, f"docker://{cluster.host}/bench/image:1", "--dest-cert-dir", certs,
             "--dest-creds", creds)  # fmt: skip
        push(layout, f"docker://{ref_host}/bench/image:1", "--dest-tls-verify=false")
        docker.run(
            "login", "-u", "admin", "--password-stdin", cluster.host, stdin=cluster.admin_password
        )
        print("pulling", file=sys.stderr, flush=True)
        ours = pull_seconds(docker, f"{cluster.host}/bench/image:1")
        theirs = pull_seconds(docker, f"{ref_host}/bench/image:1")
        size = 160
        print(f"docker pull 10 x 16 MiB, quorum (3 replicas, HTTPS, auth): {ours:.2f} s "
              f"({size / ours:.0f} MiB/s)")  # fmt: skip
        print(f"docker pull 10 x 16 MiB, distribution 2.8 (HTTP, no auth): {theirs:.2f} s "
              f"({size / theirs:.0f} MiB/s)")  # fmt: skip
        print(f"ratio (distribution time / quorum time): {theirs / ours:.2f}")
    finally:
        if docker is not None:
            docker.stop()
        cluster.stop()
        if reference is not None:
            reference.terminate()
            reference.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
