#!/usr/bin/env python3
"""Login flood against pushes: an 8 MiB blob upload, alone and while 64 clients, each
from its own loopback address, log in with a right password as fast as they can
(each login is one scrypt).

    .venv/bin/python bench/login_flood_bench.py            # clients that ignore Retry-After
    .venv/bin/python bench/login_flood_bench.py --polite   # clients that honour it
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.cluster import LocalCluster
from tests.images import sha256


def upload_seconds(cluster: LocalCluster, headers: dict[str, str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        data = os.urandom(8 << 20)
        started = time.perf_counter()
        httpx.post(
            f"{cluster.url}/v2/flood/app/blobs/uploads/",
            params={"digest": sha256(data)},
            content=data,
            headers=headers,
            verify=cluster.verify,
            timeout=120,
        ).raise_for_status()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    polite = "--polite" in sys.argv  # clients that wait as Retry-After says
    work = tempfile.mkdtemp(prefix="qreg-flood-")
    cluster = LocalCluster(os.path.join(work, "data"), replicas=1, tls=True).start()
    stop = threading.Event()
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def flood(n: int) -> None:
        # Each client from its own loopback address: the per-address limits do not
        # throttle them, so the hashing pool and its queue take the load.
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{n + 2}", verify=cluster.verify)
        with httpx.Client(transport=transport, timeout=30) as client:
            while not stop.is_set():
                r = client.get(cluster.url + "/auth/token", auth=("admin", cluster.admin_password))
                with lock:
                    answers[r.status_code] = answers.get(r.status_code, 0) + 1
                if polite and r.status_code == 429:
                    stop.wait(float(r.headers.get("Retry-After", "1")))

    try:
        # The pusher's token comes first: during the flood, new logins may get 429.
        headers = cluster.auth.bearer(cluster.url, "flood/app")
        alone = upload_seconds(cluster, headers)
        threads = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(64)]
        for t in threads:
            t.start()
        time.sleep(2)
        flooded = upload_seconds(cluster, headers)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        cluster.stop()
    print(f"8 MiB upload alone:               {alone:.2f} s")
    print(f"8 MiB upload during a login flood: {flooded:.2f} s ({flooded / alone:.2f}x)")
    print(f"logins answered during the flood:  {dict(sorted(answers.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
