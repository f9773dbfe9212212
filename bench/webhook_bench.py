#!/usr/bin/env python3
"""Webhook benchmark: event-to-delivery latency on three replicas.

N tags are pushed (manifest PUTs by 8 clients spread over the replicas, each a tag of
its own; flat out, or paced with --rate) while one webhook delivers every push event
to an HTTPS receiver on loopback;
latency is the receiver's clock at arrival less the event's time (the proposing
replica's clock when the push was proposed; one machine here, one clock).

  .venv/bin/python bench/webhook_bench.py [--pushes 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.registry_bench import print_figures
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, image
from tests.webhook_receiver import Receiver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0, help="pushes a second (0: flat out)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-webhook-bench-")
    receiver = Receiver(os.path.join(work, "receiver")).start()
    cluster = LocalCluster(os.path.join(work, "qreg"), replicas=3).start()
    figures: dict[str, object] = {"pushes": args.pushes, "rate": args.rate or "flat out"}
    try:
        with cluster.client() as admin:
            r = admin.post("/api/v0/webhooks", json={
                "url": receiver.url + "/bench", "ca_pem": receiver.ca_pem,
                "allow_private": True, "events": ["push"], "scope": "bench/",
            })  # fmt: skip
            assert r.status_code == 201, r.text
            config, layers, manifest = image("bench", layers=1, layer_size=1000)
            for blob in (config, *layers):
                r = admin.post("/v2/bench/app/blobs/uploads/", params={"digest": blob.digest},
                               content=blob.data)  # fmt: skip
                assert r.status_code == 201, r.text

        local = threading.local()

        def push(n: int) -> None:
            if args.rate:  # paced: push n goes at its own time
                time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
            # A client per thread, kept: a token per push would measure the sign-in.
            if not hasattr(local, "client"):
                local.client = cluster.client(index=threading.get_ident() % 3)
            r = local.client.put(f"/v2/bench/app/manifests/t{n}", content=manifest.data,
                                 headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
            assert r.status_code == 201, r.text

        print(f"pushing {args.pushes} tags", file=sys.stderr, flush=True)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(push, range(args.pushes)))
        pushed_s = time.monotonic() - started
        deadline = time.monotonic() + 300
        while len({r.headers["x-qreg-delivery"] for r in receiver.on("/bench")}) < args.pushes:
            assert time.monotonic() < deadline, "not every event was delivered in 5 minutes"
            time.sleep(0.2)
        delivered_s = time.monotonic() - started
        latencies = sorted((r.wall * 1000 - r.json()["at_ms"]) for r in receiver.on("/bench"))
        figures.update(
            push_rate_per_s=round(args.pushes / pushed_s),
            all_delivered_after_s=round(delivered_s, 2),
            latency_median_ms=round(statistics.median(latencies), 1),
            latency_p99_ms=round(latencies[int(len(latencies) * 0.99) - 1], 1),
            deliveries=len(receiver.on("/bench")),
        )
    finally:
        cluster.stop()
        receiver.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
