#!/usr/bin/env python3
"""Failover benchmark: how long writes stop when the leader dies, and when it is
stopped on purpose, under write load through every replica.

Each round: three writer threads push tags through the three replicas without pause
(errors are counted, not retried); a probe writes through the survivors in turn,
10 ms apart, to time the window. Then either

- SIGKILL the leader: the window is from the kill until a write through a survivor
  succeeds; the new leader's election is timed too (polling /health every 20 ms);
- SIGTERM the leader (a planned restart): the same window, and whether any write
  through a survivor failed during the handover.

Each round also gives the longest pause between two successful writes through the
survivors, and how many of their writes failed.

The killed replica is started again and the cluster waits for a leader before the
next round.

  .venv/bin/python bench/failover_bench.py --runs 20            # SIGKILL rounds
  .venv/bin/python bench/failover_bench.py --runs 10 --sigterm  # planned handovers
  .venv/bin/python bench/failover_bench.py --rolling             # a rolling restart
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST
from tests.replication.test_three_replicas import push_image


def put_tag(client: httpx.Client, url: str, repository: str, tag: str, body: bytes) -> str:
    """Push a manifest by tag: "" when it was acknowledged, else what went wrong."""
    try:
        r = client.put(
            f"{url}/v2/{repository}/manifests/{tag}",
            content=body,
            headers={"Content-Type": OCI_MANIFEST},
        )
    except httpx.HTTPError as e:
        return f"{type(e).__name__} {e}"
    return "" if r.status_code == 201 else f"{r.status_code} {r.text[:200]}"


class Writers:
    """One thread per replica, pushing unique tags as fast as answers come."""

    def __init__(self, cluster: LocalCluster, body: bytes) -> None:
        self.cluster = cluster
        self.body = body
        self.stop = threading.Event()
        self.ok: list[list[float]] = [[], [], []]  # monotonic times of successes
        self.failed: list[list[float]] = [[], [], []]  # monotonic times of failures
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(3)]
        for t in self.threads:
            t.start()

    def _run(self, index: int) -> None:
        n = 0
        with httpx.Client(timeout=10, auth=self.cluster.auth) as client:
            while not self.stop.is_set():
                n += 1
                url = self.cluster.urls[index]
                error = put_tag(client, url, "bench/load", f"w{index}-{n}", self.body)
                if not error:
                    self.ok[index].append(time.monotonic())
                    continue
                self.errors.append(f"replica-{index}: {error}")
                self.failed[index].append(time.monotonic())
                time.sleep(0.01)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def elected(cluster: LocalCluster, survivors: list[int], old: int, since: float) -> float:
    """Seconds from `since` until a survivor names a leader other than `old`."""
    with httpx.Client(timeout=0.5) as client:
        while True:
            for i in survivors:
                try:
                    leader = client.get(cluster.urls[i] + "/health").json().get("leader")
                except (httpx.HTTPError, ValueError):
                    continue
                if leader and leader != f"replica-{old}":
                    return time.monotonic() - since
            time.sleep(0.02)


def round_(cluster: LocalCluster, body: bytes, probe: bytes, sig: int) -> dict[str, float]:
    leader = cluster.leader()
    survivors = [i for i in range(3) if i != leader]
    writers = Writers(cluster, body)
    time.sleep(1.0)  # load running before the leader goes
    election: list[float] = []
    os.kill(cluster.pids[leader], sig)
    stopped = time.monotonic()
    watcher = threading.Thread(
        target=lambda: election.append(elected(cluster, survivors, leader, stopped))
    )
    watcher.start()
    n = 0
    with httpx.Client(timeout=10, auth=cluster.auth) as client:
        while time.monotonic() - stopped < 60:
            n += 1
            error = put_tag(
                client, cluster.urls[survivors[n % 2]], "bench/failover", f"p{n}", probe
            )
            if not error:
                window = time.monotonic() - stopped
                break
            time.sleep(0.01)
        else:
            sys.exit(f"no write through a survivor for 60 s: {error}")
    watcher.join()
    time.sleep(0.5)
    writers.close()
    failed = sum(len(writers.failed[i]) for i in survivors)
    for line in writers.errors:
        if not line.startswith(f"replica-{leader}:"):
            print("  failed:", line, file=sys.stderr)
    # The longest pause between two successful writes through the survivors.
    done = sorted(t for i in survivors for t in writers.ok[i] if t > stopped - 0.5)
    pause = max((b - a for a, b in zip(done, done[1:], strict=False)), default=float("inf"))
    cluster.wait_stopped(leader)
    cluster.restart(leader)
    cluster.leader()
    return {"window": window, "election": election[0], "failed": failed, "pause": pause}


def rolling_restart(cluster: LocalCluster, body: bytes) -> dict[str, float]:
    """SIGTERM each replica in turn (the leader last), start it again and wait until it
    has caught up, while four clients push through all three with client-side retry
    across replicas (a refused connection or a 503 goes to the next replica at once):
    pushes that failed everywhere, and the longest pause between successful pushes."""
    stop = threading.Event()
    done: list[float] = []
    failed = [0]
    retried = [0]

    def push(k: int) -> None:
        n = 0
        with httpx.Client(timeout=10, auth=cluster.auth) as client:
            while not stop.is_set():
                n += 1
                for attempt in range(30):
                    url = cluster.urls[(k + n + attempt) % 3]
                    if not put_tag(client, url, "bench/load", f"roll{k}-{n}", body):
                        done.append(time.monotonic())
                        break
                    retried[0] += 1
                    time.sleep(0.01 if attempt < 3 else 0.1)
                else:
                    failed[0] += 1

    clients = [threading.Thread(target=push, args=(k,)) for k in range(4)]
    for c in clients:
        c.start()
    started = time.monotonic()
    time.sleep(1.0)
    leader = cluster.leader()
    for i in [j for j in range(3) if j != leader] + [leader]:
        os.kill(cluster.pids[i], signal.SIGTERM)
        cluster.wait_stopped(i)
        target = max(cluster.health(j)["commit_index"] for j in range(3) if j != i)
        cluster.restart(i)
        while cluster.health(i)["applied_index"] < target:  # caught up to its restart
            time.sleep(0.1)
        print(f"  replica-{i} restarted and caught up", file=sys.stderr, flush=True)
        time.sleep(1.0)
    stop.set()
    for c in clients:
        c.join()
    times = sorted(t for t in done if t > started)
    pause = max((b - a for a, b in zip(times, times[1:], strict=False)), default=float("inf"))
    return {"pushes": len(times), "failed": failed[0], "retried": retried[0], "pause": pause}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="leaders to stop")
    parser.add_argument("--sigterm", action="store_true", help="planned stops, not kills")
    parser.add_argument(
        "--rolling", action="store_true", help="a rolling restart of all three instead"
    )
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-failover-")
    cluster = LocalCluster(os.path.join(work, "three"), replicas=3).start()
    try:
        body = push_image(cluster.url, "bench/load", "seed", "fo").data
        probe = push_image(cluster.url, "bench/failover", "seed", "fo").data
        if args.rolling:
            r = rolling_restart(cluster, body)
            print("rolling restart of three replicas (SIGTERM, start, catch up), leader last,")
            print("four clients pushing with client-side retry across replicas:")
            print(f"  pushes {r['pushes']:.0f}, failed everywhere {r['failed']:.0f}, "
                  f"retried on another replica {r['retried']:.0f}")  # fmt: skip
            print(f"  longest pause between successful pushes: {r['pause']:.2f} s")
            return 0
        sig = signal.SIGTERM if args.sigterm else signal.SIGKILL
        rounds = []
        for k in range(args.runs):
            r = round_(cluster, body, probe, sig)
            rounds.append(r)
            print(
                f"round {k + 1}: window {r['window']:.2f} s, election {r['election']:.2f} s, "
                f"longest write pause {r['pause']:.2f} s, "
                f"failed writes through survivors {r['failed']:.0f}",
                file=sys.stderr,
                flush=True,
            )
        windows = [r["window"] for r in rounds]
        elections = [r["election"] for r in rounds]
        pauses = [r["pause"] for r in rounds]
        what = "SIGTERM" if args.sigterm else "SIGKILL"
        print(f"leader {what}, {args.runs} rounds, write load through all three replicas")
        print(f"  write unavailability: median {statistics.median(windows):.2f} s, "
              f"max {max(windows):.2f} s")  # fmt: skip
        print(f"  new leader named: median {statistics.median(elections):.2f} s, "
              f"max {max(elections):.2f} s")  # fmt: skip
        print(f"  longest pause between writes through survivors: median "
              f"{statistics.median(pauses):.2f} s, max {max(pauses):.2f} s")  # fmt: skip
        print(f"  failed writes through survivors: {sum(r['failed'] for r in rounds):.0f}")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
