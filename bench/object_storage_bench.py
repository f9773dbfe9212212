#!/usr/bin/env python3
"""Object storage benchmark: three replicas sharing a SeaweedFS bucket, side by side
with distribution 2.8 on its own S3 driver and the same SeaweedFS, in one run.

For each registry, with redirects to presigned URLs off and on (distribution's
`storage.redirect.disable`, our `blobs.redirect`), it measures a blob pushed
monolithic (POST + one PUT) and chunked (POST + 16 MiB PATCHes + PUT), the blob
pulled (curl -L: a redirect is followed, without the registry's token), and an image
of 10 x 16 MiB layers pushed and pulled with skopeo. Medians of --runs.

    .venv/bin/python bench/object_storage_bench.py                 # 512 MiB, 3 runs
    .venv/bin/python bench/object_storage_bench.py --size-mib 64 --runs 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.registry_bench import (
    Credentials,
    make_blob,
    push_chunked,
    push_monolithic,
    serve_until_ready,
    skopeo,
)
from tests.cluster import LocalCluster, free_port_block
from tests.images import image_layout
from tests.object_store import SeaweedFS

MiB = 1 << 20


def pull(url: str, repo: str, digest: str, auth: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["curl", "-sfL", "-o", "/dev/null", *auth, f"{url}/v2/{repo}/blobs/{digest}"], check=True
    )
    return time.perf_counter() - start


def measure(
    name: str, url: str, work: str, blob: tuple[str, str], size: int, runs: int,
    creds: Credentials,
) -> dict[str, float]:  # fmt: skip
    print(f"  {name}", file=sys.stderr, flush=True)
    path, digest = blob
    mib = size / MiB
    found: dict[str, float] = {}
    found[f"push monolithic {int(mib)} MiB (MiB/s)"] = mib / statistics.median(
        push_monolithic(url, f"bench/mono{k}", path, digest, creds) for k in range(runs)
    )
    found[f"push chunked {int(mib)} MiB (MiB/s)"] = mib / statistics.median(
        push_chunked(url, f"bench/chunked{k}", path, digest, creds) for k in range(runs)
    )
    reader = creds.curl("bench/mono0")
    found[f"pull {int(mib)} MiB (MiB/s)"] = mib / statistics.median(
        pull(url, "bench/mono0", digest, reader) for _ in range(runs)
    )
    host = url.removeprefix("http://").removeprefix("https://")
    pushes, pulls = [], []
    for k in range(runs):
        # An image of its own each time: skopeo remembers where blobs are and would
        # mount a pushed one instead of sending it.
        shutil.rmtree(os.path.join(work, "layout"), ignore_errors=True)
        layout, _ = image_layout(
            os.path.join(work, "layout"), f"{name}-{k}", layers=10, layer_size=16 * MiB
        )
        start = time.perf_counter()
        skopeo("copy", "--dest-tls-verify=false", *creds.skopeo("dest"), f"oci:{layout}:latest",
               f"docker://{host}/bench/image{k}:1")  # fmt: skip
        pushes.append(time.perf_counter() - start)
        out = os.path.join(work, "pulled")
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        skopeo("copy", "--src-tls-verify=false", *creds.skopeo("src"),
               f"docker://{host}/bench/image{k}:1", f"dir:{out}")  # fmt: skip
        pulls.append(time.perf_counter() - start)
    found["image push 10 x 16 MiB (s)"] = statistics.median(pushes)
    found["image pull 10 x 16 MiB (s)"] = statistics.median(pulls)
    return found


def start_distribution(
    work: str, store: SeaweedFS, redirect: bool
) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        sys.exit("distribution is not installed: apt-get install -y docker-registry")
    settings = store.settings()
    port = free_port_block()
    config = os.path.join(work, f"distribution-{redirect}.yml")
    with open(config, "w") as f:
        f.write(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            "storage:\n  s3:\n"
            f"    accesskey: {settings.access_key}\n    secretkey: {settings.secret_key}\n"
            f"    region: {settings.region}\n    regionendpoint: {settings.endpoint}\n"
            f"    bucket: {settings.bucket}\n    rootdirectory: /distribution\n"
            "    secure: false\n    v4auth: true\n"
            f"  redirect:\n    disable: {'false' if redirect else 'true'}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
        )
    # Its AWS SDK refuses AWS_CA_BUNDLE with its own HTTP transport (a panic at start).
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return serve_until_ready([binary, "serve", config], port, "distribution", env)


def restart_all(cluster: LocalCluster) -> None:
    for i in range(len(cluster.urls)):
        cluster.signal(i, signal.SIGTERM)
        cluster.wait_stopped(i)
        cluster.restart(i)
    cluster.leader()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-s3-bench-")
    store = SeaweedFS(os.path.join(work, "seaweedfs")).start()
    cluster = None
    try:
        print("preparing the blob", file=sys.stderr, flush=True)
        size = args.size_mib * MiB
        blob = make_blob(work, size)
        env = store.replica_env(prefix="quorum")
        cluster = LocalCluster(os.path.join(work, "qreg"), replicas=3, env=env).start()
        ours = Credentials(cluster.url, "admin", cluster.admin_password, cluster.verify)
        columns: dict[str, dict[str, float]] = {}
        columns["quorum"] = measure("quorum", cluster.url, work, blob, size, args.runs, ours)
        cluster.env["QREG_BLOBS_REDIRECT"] = "true"
        restart_all(cluster)
        columns["quorum redirect"] = measure(
            "quorum redirect", cluster.url, work, blob, size, args.runs, ours
        )
        cluster.stop()
        cluster = None
        for redirect in (False, True):
            process, url = start_distribution(work, store, redirect)
            try:
                name = "distribution" + (" redirect" if redirect else "")
                columns[name] = measure(name, url, work, blob, size, args.runs,
                                        Credentials(url))  # fmt: skip
            finally:
                process.terminate()
                process.wait()
        print_table(columns)
    finally:
        if cluster is not None:
            cluster.stop()
        store.stop()
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def print_table(columns: dict[str, dict[str, float]]) -> None:
    pairs = [("quorum", "distribution"), ("quorum redirect", "distribution redirect")]
    keys = list(columns["quorum"])
    width = max(len(k) for k in keys)
    header = f"{'measure':<{width}}"
    for ours, theirs in pairs:
        header += f"  {ours:>15}  {theirs:>21}  {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for key in keys:
        line = f"{key:<{width}}"
        lower_better = key.endswith("(s)")
        for ours, theirs in pairs:
            a, b = columns[ours][key], columns[theirs][key]
            ratio = (b / a if lower_better else a / b) if a and b else 0.0
            line += f"  {a:>15.1f}  {b:>21.1f}  {ratio:>5.2f}x"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
