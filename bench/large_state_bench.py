#!/usr/bin/env python3
"""Large-state benchmark: what a cluster holding a million tags costs, against a small one.

Three replicas; every tag is written through the API (a manifest PUT by tag, each
with a manifest of its own, as CI pushes make them) with a bearer token, so the
state grows through Raft exactly as users grow it. 10 % of the tags go to one
repository (bench/big, as a busy CI repository), the rest spread evenly over the
others. At each level (the first is the small state: the repositories with one
tag each) it measures:

- manifest GET by tag across 1,000 repositories (wrk, 64 connections, a token each);
- tag list (n=100) first page and a page in the middle of bench/big; catalog (n=100)
  first page and a page in the middle;
- each replica's memory (RSS), the LMDB file and the snapshot;
- a snapshot with log compaction on the leader: its time and the longest write
  (a PUT by tag, one after another) while it runs, against the longest before;
- a follower's restart (SIGTERM, start) to serving and to caught up;
- a fifth replica's join to caught up, its peak memory, equal state digests;
- `qreg backup` of the whole metadata.

  .venv/bin/python bench/large_state_bench.py                       # 10,000 repos, 1M tags
  .venv/bin/python bench/large_state_bench.py --repos 500 --levels 20000   # a quick look
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.state_measures import (
    BIG,
    Tokens,
    backup,
    compaction,
    join,
    listings,
    manifest_gets,
    memory_and_disk,
    restart_follower,
    wrk,
)
from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST
from tests.replication.test_three_replicas import push_image

GROUP = 1000  # repositories per wrk run: tokens for them are minted just before it

# wrk: each request a PUT by a new tag to the next repository of the group, with that
# repository's token (a file of "NAME TOKEN" lines).
_PUT_SCRIPT = """
local targets = {}
for line in io.lines("%(tokens)s") do
  local name, token = line:match("^(%%S+) (%%S+)$")
  targets[#targets + 1] = {name, "Bearer " .. token}
end
local head = io.open("%(head)s"):read("*a")
local tail = io.open("%(tail)s"):read("*a")
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
request = function()
  counter = counter + 1
  local target = targets[(counter + tid) %% #targets + 1]
  local tag = string.format("t%(run)d-%%d-%%d", tid, counter)
  local headers = {["Content-Type"] = "%(media_type)s", ["Authorization"] = target[2]}
  return wrk.format("PUT", "/v2/" .. target[1] .. "/manifests/" .. tag, headers,
                    head .. tag .. tail)
end
"""


class Loader:
    """Writes tags through the leader with wrk, group by group of repositories."""

    def __init__(self, cluster: LocalCluster, work: str, tokens: Tokens) -> None:
        self.cluster, self.work, self.tokens = cluster, work, tokens
        self.tags = 0  # written so far, the repositories' first tags included
        self.rate = 1500.0  # tag writes/s, as last seen
        self.runs = 0

    def fill(self, repositories: list[str], total: int) -> None:
        """Write tags until `total` exist: a tenth to bench/big, the rest spread evenly."""
        needed = total - self.tags
        groups = [repositories[i : i + GROUP] for i in range(0, len(repositories), GROUP)]
        shares = [(groups_of, needed * 0.9 / len(groups)) for groups_of in groups]
        for names, count in [([BIG], needed * 0.1), *shares]:
            self._write(names, count)
            print(f"  {self.tags:,} tags ({self.rate:,.0f}/s)", file=sys.stderr, flush=True)

    def _write(self, names: list[str], count: float) -> None:
        while count > 0:
            self.runs += 1
            tokens = self.tokens.file(os.path.join(self.work, "tokens"), names)
            script = os.path.join(self.work, "put.lua")
            with open(script, "w") as f:
                f.write(
                    _PUT_SCRIPT
                    % {
                        "tokens": tokens,
                        "head": os.path.join(self.work, "head"),
                        "tail": os.path.join(self.work, "tail"),
                        "run": self.runs,
                        "media_type": OCI_MANIFEST,
                    }
                )
            seconds = min(240.0, count / self.rate)  # access tokens live 300 s
            done, self.rate = wrk(self.cluster.urls[self.cluster.leader()], script, seconds)
            self.tags += done
            count -= done


def make_repositories(tokens: Tokens, names: list[str], manifest: bytes) -> None:
    """Each repository gets tag "1": bench/big's first image, its blobs mounted from there
    (so every tag written later, that image's manifest annotated, is valid in each)."""
    document = json.loads(manifest)
    digests = [document["config"]["digest"], *(layer["digest"] for layer in document["layers"])]

    def one(name: str) -> None:
        token = tokens.one(f"repository:{name}:* repository:{BIG}:pull")
        headers = {"Authorization": f"Bearer {token}"}
        for digest in digests:
            tokens.client.post(
                f"/v2/{name}/blobs/uploads/",
                headers=headers,
                params={"mount": digest, "from": BIG},
            ).raise_for_status()
        tokens.client.put(
            f"/v2/{name}/manifests/1",
            content=manifest,
            headers={**headers, "Content-Type": OCI_MANIFEST},
        ).raise_for_status()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))


# ---- measures ------------------------------------------------------------------------
def measure(
    cluster: LocalCluster, work: str, tokens: Tokens, names: list[str], body: bytes, n: int
) -> dict[str, float]:
    row: dict[str, float] = {}
    print("  manifest GETs", file=sys.stderr, flush=True)
    row["manifest GET by tag, 1,000 repos, 64 connections (req/s)"] = manifest_gets(
        cluster, work, tokens, names[:1000]
    )
    row.update(listings(cluster, names[len(names) // 2]))
    row.update(memory_and_disk(cluster))
    print("  compaction", file=sys.stderr, flush=True)
    row.update(compaction(cluster, tokens, body))
    print("  restart", file=sys.stderr, flush=True)
    row.update(restart_follower(cluster))
    print("  join", file=sys.stderr, flush=True)
    row.update(join(cluster, work, f"joiner-{n}"))
    print("  backup", file=sys.stderr, flush=True)
    row.update(backup(cluster, work))
    return row


def print_table(columns: dict[str, dict[str, float]]) -> None:
    labels = list(columns)
    print(f"\n| measure | {' | '.join(labels)} | last / first |")
    print(f"|---|{'---|' * len(labels)}---|")
    for key in columns[labels[0]]:
        values = [columns[label][key] for label in labels]
        cells = " | ".join(f"{v:,.0f}" if v >= 100 else f"{v:.2f}" for v in values)
        ratio = values[-1] / values[0] if values[0] else float("nan")
        print(f"| {key} | {cells} | {ratio:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repos", type=int, default=10_000, help="repositories (default 10,000)")
    parser.add_argument(
        "--levels", default="100000,1000000", help="tag totals to measure at, after the small state"
    )
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-large-")
    cluster = LocalCluster(os.path.join(work, "data"), replicas=3).start()
    columns: dict[str, dict[str, float]] = {}
    try:
        tokens = Tokens(cluster)
        names = [f"bench/r{i}" for i in range(args.repos - 1)]
        seed = push_image(cluster.url, BIG, "seed", "seed")
        manifest = json.loads(seed.data)
        manifest["annotations"] = {"bench": "@@N@@"}
        head, tail = json.dumps(manifest).split("@@N@@")
        for name, part in (("head", head), ("tail", tail)):
            with open(os.path.join(work, name), "w") as f:
                f.write(part)
        print(f"  creating {args.repos:,} repositories", file=sys.stderr, flush=True)
        started = time.monotonic()
        make_repositories(tokens, names, seed.data)
        print(f"  took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        loader = Loader(cluster, work, tokens)
        loader.tags = args.repos
        # bench/big needs more than one tag for its pages: the small state has 1,000.
        loader._write([BIG], 1000)
        levels = [loader.tags, *(int(x) for x in args.levels.split(","))]
        for n, level in enumerate(levels):
            if level > loader.tags:
                started = time.monotonic()
                loader.fill(names, level)
                print(
                    f"  loaded to {loader.tags:,} in {time.monotonic() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
            label = f"{loader.tags:,} tags"
            columns[label] = measure(cluster, work, tokens, names, seed.data, n)
            for key, value in columns[label].items():
                print(f"  {key:<62} {value:,.2f}", flush=True)
        print_table(columns)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
