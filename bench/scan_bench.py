#!/usr/bin/env python3
"""Scanning benchmark, in this process:

1. Inventory throughput on a real Debian root filesystem: this machine's /etc,
   /var/lib/dpkg and /usr/share and /usr/lib/python3 (a Debian 12 system) as one
   gzipped layer; MiB of layer (compressed and uncompressed) per second.
2. Import of a generated OSV database of 50,000 records (Debian:12, with ranges like
   the real ones): seconds, and the index's size on disk.
3. Rescanning 1,000 stored inventories (the real one of step 1, as 1,000 images)
   against that database: seconds.

  .venv/bin/python bench/scan_bench.py [--records 50000] [--images 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from replica.scan import layers, matching
from replica.scan.osv import OsvIndex

ROOTS = ["etc", "var/lib/dpkg", "usr/share", "usr/lib/python3"]


def build_layer(path: str) -> int:
    raw = 0
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for root in ROOTS:
            for directory, _, files in os.walk("/" + root):
                for name in files:
                    full = os.path.join(directory, name)
                    if os.path.islink(full) or not os.path.isfile(full):
                        continue
                    try:
                        tar.add(full, arcname=full.lstrip("/"))
                        raw += os.path.getsize(full)
                    except OSError:
                        continue
    return raw


def generated_database(path: str, records: int, packages: list[str]) -> None:
    rng = random.Random(1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(records):
            name = rng.choice(packages) if rng.random() < 0.3 else f"pkg{n % 20000}"
            record = {
                "id": f"DEBIAN-CVE-2099-{n:05d}",
                "modified": "2026-11-30T00:00:00Z",
                "aliases": [f"CVE-2099-{n:05d}"],
                "affected": [
                    {
                        "package": {"ecosystem": "Debian:12", "name": name},
                        "ranges": [
                            {
                                "type": "ECOSYSTEM",
                                "events": [
                                    {"introduced": "0"},
                                    {"fixed": f"{rng.randint(0, 9)}.{rng.randint(0, 99)}-1"},
                                ],
                            }
                        ],
                    }
                ],
            }
            z.writestr(f"{record['id']}.json", json.dumps(record))


def size_of(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--images", type=int, default=1_000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="scan-bench-")
    try:
        layer = os.path.join(work, "layer.tar.gz")
        raw = build_layer(layer)
        packed = os.path.getsize(layer)
        started = time.perf_counter()
        with open(layer, "rb") as f:
            found = layers.inventory(f)
        took = time.perf_counter() - started
        print(
            f"inventory: {packed / 2**20:.0f} MiB gzipped ({raw / 2**20:.0f} MiB of files) in "
            f"{took:.1f} s = {packed / 2**20 / took:.0f} MiB/s gzipped, "
            f"{raw / 2**20 / took:.0f} MiB/s of files; {len(found['files'])} package files"
        )
        stored = zlib.compress(json.dumps(found).encode())
        packages, release = layers.stack([found])
        release = release or {"ID": "debian", "VERSION_ID": "12"}
        print(
            f"  {len(packages)} packages, release {release}, "
            f"stored inventory {len(stored) / 1024:.0f} KiB"
        )

        archive = os.path.join(work, "Debian.zip")
        sources = sorted({p.source or p.name for p in packages if p.kind == "deb"})
        generated_database(archive, args.records, sources)
        index = OsvIndex(os.path.join(work, "index"))
        started = time.perf_counter()
        with open(archive, "rb") as f:
            report = index.build([f])
        took = time.perf_counter() - started
        print(
            f"import: {report.records} records ({os.path.getsize(archive) / 2**20:.1f} MiB zip) in "
            f"{took:.1f} s; index {size_of(index.path) / 2**20:.1f} MiB on disk"
        )

        started = time.perf_counter()
        findings = 0
        for _ in range(args.images):
            inventory = json.loads(zlib.decompress(stored))
            stacked, rel = layers.stack([inventory])
            findings += len(matching.match(index, stacked, rel or release))
        took = time.perf_counter() - started
        print(
            f"rescan: {args.images} stored inventories in {took:.1f} s "
            f"({took / args.images * 1000:.1f} ms each, {findings // args.images} findings each)"
        )
        index.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
