"""Growing a one-replica cluster to two, under writes: how long are writes unavailable?

A writer pushes a manifest under a new tag back to back through replica 0 while
`qreg join` adds replica 1 and it is started. Prints the longest gap between two
acknowledged writes from the join to the end, and how many writes failed.

    .venv/bin/python bench/grow_bench.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, image


def one_run(root: str) -> tuple[float, int, float]:
    cluster = LocalCluster(os.path.join(root, "data"), replicas=1).start()
    config, layers, _ = image("grow", layers=1, layer_size=1000)
    for blob in (config, layers[0]):
        httpx.post(
            f"{cluster.url}/v2/grow/app/blobs/uploads/",
            auth=cluster.auth,
            params={"digest": blob.digest},
            content=blob.data,
        ).raise_for_status()
    acked: list[float] = []
    failed = 0
    stop = threading.Event()

    def writer() -> None:
        nonlocal failed
        with httpx.Client(timeout=30, auth=cluster.auth) as client:
            n = 0
            while not stop.is_set():
                n += 1
                body = json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": config.descriptor(),
                        "layers": [layers[0].descriptor()],
                        "annotations": {"n": str(n)},
                    }
                ).encode()
                try:
                    r = client.put(
                        f"{cluster.url}/v2/grow/app/manifests/t{n}",
                        content=body,
                        headers={"Content-Type": OCI_MANIFEST},
                    )
                    if r.status_code == 201:
                        acked.append(time.monotonic())
                        continue
                except httpx.HTTPError:
                    pass
                failed += 1
                time.sleep(0.05)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    process = None
    try:
        time.sleep(1.0)
        started = time.monotonic()
        process, url = cluster.join_replica(os.path.join(root, "replica-1"), "replica-1")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                listed = (
                    httpx.get(f"{cluster.url}/api/v0/replicas", auth=cluster.auth, timeout=5)
                    .json()
                    .get("replicas", [])
                )
                if len(listed) == 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        joined = time.monotonic() - started
        time.sleep(3.0)
        stop.set()
        thread.join(30)
        marks = [started] + [t for t in acked if t >= started]
        gap = max(b - a for a, b in zip(marks, marks[1:], strict=False))
        return gap, failed, joined
    finally:
        stop.set()
        if process is not None:
            process.terminate()
            process.wait(30)
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as root:
            gap, failed, joined = one_run(root)
        print(
            f"run {run + 1}: longest write gap {gap:.2f} s, failed writes {failed}, "
            f"two replicas listed after {joined:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
