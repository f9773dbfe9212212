#!/usr/bin/env python3
"""Content-trust benchmark, in one run:

- `notary publish` (one new target each time) and `notary list` latency, median of
  10, against three replicas over HTTPS, and against Debian's notary-server (memory
  storage, one process, plain HTTP: no replication and no TLS) as the reference;
- manifest GET by tag (wrk, 64 connections, a bearer token on every request) with
  the repository's signed-only policy off and on: the policy's cost as a ratio, and
  distribution 2.8 (no authentication, as Debian ships it) beside them.

  .venv/bin/python bench/trust_bench.py [--seconds 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.registry_bench import Credentials, serve_until_ready, start_distribution, wrk
from tests.cluster import LocalCluster, free_port_block
from tests.images import OCI_MANIFEST, image_layout
from tests.trust.signers import Notary

ROUNDS = 10


def median_seconds(action: Callable[[int], object]) -> float:
    times = []
    for k in range(ROUNDS):
        start = time.perf_counter()
        action(k)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def notary_latency(work: str, name: str, writer: Notary, reader: Notary, gun: str) -> dict:
    print(f"  {name}: notary publish and list", file=sys.stderr, flush=True)
    writer.run("init", gun)
    writer.run("publish", gun)
    target = os.path.join(work, f"target-{name}")

    def publish(k: int) -> None:
        with open(target, "w") as f:
            f.write(f"target {k}\n")
        writer.run("add", gun, f"t{k}", target)
        writer.run("publish", gun)

    def listing(k: int) -> None:
        reader.run("list", gun)

    # The add is local and takes a few ms; the publish is the round trip measured.
    return {
        f"{name}: notary add + publish, median (ms)": 1000 * median_seconds(publish),
        f"{name}: notary list, median (ms)": 1000 * median_seconds(listing),
    }


def start_notary_server(work: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port_block()
    config = os.path.join(work, "notary-server.json")
    with open(config, "w") as f:
        json.dump(
            {
                "server": {"http_addr": f"127.0.0.1:{port}"},
                "trust_service": {"type": "local"},
                "logging": {"level": "error"},
                "storage": {"backend": "memory"},
            },
            f,
        )
    return serve_until_ready(["notary-server", "-config", config], port, "notary-server")


def policy_cost(cluster: LocalCluster, work: str, seconds: int) -> dict:
    """Manifest GET rps of a signed tag with the signed-only policy off, then on."""
    print("  quorum: manifest GET with the policy off and on", file=sys.stderr, flush=True)
    layout, manifest = image_layout(os.path.join(work, "layout"), "trust-bench")
    certs = os.path.join(work, "certs")
    os.makedirs(certs, exist_ok=True)
    shutil.copy(cluster.ca, os.path.join(certs, "ca.crt"))
    subprocess.run(
        [
            "skopeo", "--insecure-policy", "copy", "--dest-cert-dir", certs,
            "--dest-creds", f"admin:{cluster.admin_password}",
            f"oci:{layout}:latest", f"docker://{cluster.host}/admin/bench:signed",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    gun = f"{cluster.host}/admin/bench"
    signer = Notary(
        os.path.join(work, "signer"), cluster.url, cluster.ca, "admin", cluster.admin_password
    )
    signer.run("init", gun)
    hex_digest = manifest.digest.split(":", 1)[1]
    signer.run("addhash", gun, "signed", str(len(manifest.data)), "--sha256", hex_digest)
    signer.run("publish", gun)
    creds = Credentials(cluster.url, "admin", cluster.admin_password, verify=cluster.verify)
    url = f"{cluster.url}/v2/admin/bench/manifests/signed"
    results = {}
    for state in ("off", "on"):
        with cluster.client() as admin:
            policy = admin.get("/api/v0/repositories/admin/bench/policy").json()
            policy["signing"] = {"signed_only": state == "on", "accepted_signers": []}
            admin.put("/api/v0/repositories/admin/bench/policy", json=policy).raise_for_status()
        token = [f"{k}: {v}" for k, v in creds.headers("admin/bench").items()]
        rps, p99 = wrk(url, [f"Accept: {OCI_MANIFEST}", *token], seconds)
        results[f"manifest GET, signed-only policy {state} (req/s)"] = rps
        results[f"manifest GET p99, policy {state} (ms)"] = p99
    on, off = (
        results["manifest GET, signed-only policy on (req/s)"],
        results["manifest GET, signed-only policy off (req/s)"],
    )
    results["policy on / off (ratio)"] = on / off
    return results


def distribution_manifest_rps(work: str, seconds: int) -> dict:
    print("  distribution: manifest GET", file=sys.stderr, flush=True)
    process, url = start_distribution(work)
    try:
        layout, _ = image_layout(os.path.join(work, "layout-d"), "trust-bench-d")
        host = url.removeprefix("http://")
        subprocess.run(
            ["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
             f"oci:{layout}:latest", f"docker://{host}/admin/bench:signed"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        rps, p99 = wrk(
            f"{url}/v2/admin/bench/manifests/signed", [f"Accept: {OCI_MANIFEST}"], seconds
        )
        return {"distribution: manifest GET (req/s)": rps, "distribution: p99 (ms)": p99}
    finally:
        process.terminate()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load test")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-trust-bench-")
    cluster = LocalCluster(os.path.join(work, "qreg"), replicas=3, tls=True)
    oracle = None
    results: dict[str, float] = {}
    try:
        cluster.start()
        pw = cluster.admin_password
        with cluster.client() as admin:
            pat = admin.post("/api/v0/accounts/admin/tokens", json={"name": "bench"}).json()
        # With the password, every notary command's login costs one scrypt (~100 ms, on
        # purpose); a personal access token, what CI uses, is a fast hash.
        for how, secret in (("password", pw), ("access token", pat["token"])):
            gun = f"{cluster.host}/admin/latency-{how.replace(' ', '-')}"
            writer = Notary(
                os.path.join(work, f"w{how}"), cluster.urls[0], cluster.ca, "admin", secret
            )
            reader = Notary(
                os.path.join(work, f"r{how}"), cluster.urls[1], cluster.ca, "admin", secret
            )
            results |= notary_latency(work, f"quorum, 3 replicas, {how}", writer, reader, gun)
        oracle, oracle_url = start_notary_server(work)
        writer = Notary(os.path.join(work, "ow"), oracle_url, "", "admin", pw)
        reader = Notary(os.path.join(work, "or"), oracle_url, "", "admin", pw)
        results |= notary_latency(work, "notary-server", writer, reader, gun)
        results |= policy_cost(cluster, work, args.seconds)
        results |= distribution_manifest_rps(work, args.seconds)
    finally:
        cluster.stop()
        if oracle is not None:
            oracle.terminate()
            oracle.wait()
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:>10.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
