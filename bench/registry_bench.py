#!/usr/bin/env python3
"""Registry benchmark: Quorum Registry side by side with distribution 2.8, in one run.

Measures, against each registry:
  - blob push, monolithic (POST + one PUT) and chunked (POST + 16 MiB PATCHes + PUT),
    for 64 MiB and 512 MiB blobs, in MiB/s;
  - blob pull, one stream and 8 concurrent streams, in MiB/s;
  - manifest GET by tag and blob HEAD at 64 concurrent connections, requests/s and p99;
  - an image of 10 x 16 MiB layers pushed and pulled with skopeo, in seconds.

Big transfers use curl and load uses wrk (GET) and curl --parallel (HEAD: wrk hangs on
HEAD answers that carry a Content-Length), so the client is never the Python under test. Quorum
is measured with token auth on (a bearer token on every request, as real clients
send); distribution as Debian packages it, without auth.

    .venv/bin/python bench/registry_bench.py --reference        # both, with ratios
    .venv/bin/python bench/registry_bench.py --url http://127.0.0.1:5000 --creds admin:PW
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from typing import IO

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.cluster import LocalCluster, free_port_block
from tests.images import OCI_MANIFEST, image_layout
from tests.registry_auth import TokenAuth

MiB = 1 << 20


def make_blob(directory: str, size: int) -> tuple[str, str]:
    path = os.path.join(directory, f"blob-{size // MiB}M")
    hasher = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            chunk = os.urandom(MiB)
            hasher.update(chunk)
            f.write(chunk)
    return path, "sha256:" + hasher.hexdigest()


def absolute(url: str, location: str) -> str:
    return location if location.startswith("http") else url + location


def with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + "digest=" + digest


class Credentials:
    """Bearer tokens for a registry with token auth (fetched before each timed step, so
    none expires mid-run); nothing for a registry without auth."""

    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.url = url
        self.auth = TokenAuth(user, password, verify) if user is not None else None

    def headers(self, repo: str) -> dict[str, str]:
        return self.auth.bearer(self.url, repo) if self.auth is not None else {}

    def curl(self, repo: str) -> list[str]:
        """-H arguments for curl and wrk."""
        return [arg for k, v in self.headers(repo).items() for arg in ("-H", f"{k}: {v}")]

    def skopeo(self, direction: str) -> list[str]:
        if self.auth is None:
            return [f"--{direction}-no-creds"]
        return [f"--{direction}-creds", f"{self.auth.user}:{self.auth.password}"]


def push_monolithic(url: str, repo: str, path: str, digest: str, creds: Credentials) -> float:
    location = absolute(
        url,
        httpx.post(f"{url}/v2/{repo}/blobs/uploads/", headers=creds.headers(repo)).headers[
            "Location"
        ],
    )
    auth = creds.curl(repo)
    start = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "-sf",
            "-o",
            "/dev/null",
            "-X",
            "PUT",
            "-T",
            path,
            *auth,
            "-H",
            "Content-Type: application/octet-stream",
            with_digest(location, digest),
        ],
        check=True,
    )
    return time.perf_counter() - start


def push_chunked(
    url: str, repo: str, path: str, digest: str, creds: Credentials, chunk: int = 16 * MiB
) -> float:
    headers = creds.headers(repo)
    start = time.perf_counter()
    with httpx.Client(timeout=300, headers=headers) as client, open(path, "rb") as f:
        location = absolute(url, client.post(f"{url}/v2/{repo}/blobs/uploads/").headers["Location"])
        offset = 0
        while data := f.read(chunk):
            r = client.patch(
                location,
                content=data,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(data) - 1}",
                },
            )
            r.raise_for_status()
            location = absolute(url, r.headers["Location"])
            offset += len(data)
        client.put(with_digest(location, digest)).raise_for_status()
    return time.perf_counter() - start


def pull(url: str, repo: str, digest: str, auth: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["curl", "-sf", "-o", "/dev/null", *auth, f"{url}/v2/{repo}/blobs/{digest}"], check=True
    )
    return time.perf_counter() - start


def wrk(url: str, headers: list[str], seconds: int) -> tuple[float, float]:
    argv = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw failed requests against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def curl_head(url: str, requests: int, work: str, auth: list[str]) -> tuple[float, float]:
    """HEAD load from one curl, 64 transfers at a time over HTTP/1.1 keep-alive
    connections: requests/s and p99 (each transfer's own time). Neither wrk nor h2load
    can (their parsers wait for a HEAD answer's body), and ab speaks HTTP/1.0, whose
    keep-alive uvicorn does not offer: every ab request was a new connection to us."""
    config = os.path.join(work, "head-urls")
    with open(config, "w") as f:
        f.write(f'url = "{url}"\noutput = "/dev/null"\n' * requests)
    start = time.perf_counter()
    out = subprocess.run(
        ["curl", "-s", "-I", "--parallel", "--parallel-max", "64", *auth, "-K", config,
         "-w", "%{http_code} %{time_total}\n"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    elapsed = time.perf_counter() - start
    answers = [line.split() for line in out.splitlines()]
    failed = [a for a in answers if a[0] != "200"]
    if failed or len(answers) != requests:
        sys.exit(f"curl saw {len(failed)} failed HEADs of {len(answers)} against {url}")
    latencies = sorted(float(a[1]) for a in answers)
    return requests / elapsed, latencies[int(len(latencies) * 0.99)] * 1000


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", "--insecure-policy", *args], check=True, capture_output=True)


def measure(
    name: str,
    url: str,
    work: str,
    blobs: dict[int, tuple[str, str]],
    layout: str,
    seconds: int,
    creds: Credentials,
) -> dict[str, float]:
    results: dict[str, float] = {}
    host = url.removeprefix("http://")
    print(f"  {name}: blobs", file=sys.stderr, flush=True)
    for size, (path, digest) in sorted(blobs.items()):
        mib = size / MiB
        # Medians of three: a single fsynced write on this disk varies by 2x.
        results[f"push monolithic {int(mib)} MiB (MiB/s)"] = mib / statistics.median(
            push_monolithic(url, f"bench/mono{k}", path, digest, creds) for k in range(3)
        )
        results[f"push chunked {int(mib)} MiB (MiB/s)"] = mib / statistics.median(
            push_chunked(url, f"bench/chunked{k}", path, digest, creds) for k in range(3)
        )
        reader = creds.curl("bench/mono0")  # one token, fetched outside the timings
        pull(url, "bench/mono0", digest, reader)  # warm the page cache as a steady server would be
        results[f"pull {int(mib)} MiB (MiB/s)"] = mib / statistics.median(
            pull(url, "bench/mono0", digest, reader) for _ in range(3)
        )
    size, (path, digest) = min(blobs.items())
    reader = creds.curl("bench/mono0")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        start = time.perf_counter()
        list(pool.map(lambda _: pull(url, "bench/mono0", digest, reader), range(8)))
        results[f"pull {size // MiB} MiB x 8 streams (MiB/s)"] = (
            8 * size / MiB / (time.perf_counter() - start)
        )
    print(f"  {name}: image push/pull", file=sys.stderr, flush=True)
    start = time.perf_counter()
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        *creds.skopeo("dest"),
        f"oci:{layout}:latest",
        f"docker://{host}/bench/image:1",
    )
    results["image push 10 x 16 MiB (s)"] = time.perf_counter() - start
    out = os.path.join(work, f"pulled-{name}")
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    skopeo(
        "copy",
        "--src-tls-verify=false",
        *creds.skopeo("src"),
        f"docker://{host}/bench/image:1",
        f"dir:{out}",
    )
    results["image pull 10 x 16 MiB (s)"] = time.perf_counter() - start
    print(f"  {name}: manifest GET and blob HEAD load", file=sys.stderr, flush=True)
    token = [f"{k}: {v}" for k, v in creds.headers("bench/image").items()]
    rps, p99 = wrk(
        f"{url}/v2/bench/image/manifests/1", [f"Accept: {OCI_MANIFEST}", *token], seconds
    )
    results["manifest GET by tag (req/s)"] = rps
    results["manifest GET p99 (ms)"] = p99
    rps, p99 = curl_head(
        f"{url}/v2/bench/mono0/blobs/{digest}",
        4000 * seconds,
        work,
        creds.curl("bench/mono0"),
    )
    results["blob HEAD (req/s)"] = rps
    results["blob HEAD p99 (ms)"] = p99
    return results


def distribution(
    work: str, name: str, extra: str = "", access_log: bool = False
) -> tuple[str, str, int]:
    """distribution 2.8's binary, and a config for it under WORK (NAME.yml, storage in
    WORK/NAME) on a free loopback port: (binary, config path, port). Its access log
    (on standard output) only with `access_log`."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        sys.exit("distribution is not installed: apt-get install -y docker-registry")
    port = free_port_block()
    config = os.path.join(work, f"{name}.yml")
    with open(config, "w") as f:
        f.write(
            f"version: 0.1\nlog:\n  level: error\n  accesslog:\n"
            f"    disabled: {'false' if access_log else 'true'}\n"
            f"storage:\n  filesystem:\n    rootdirectory: {work}/{name}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}"
        )
    return binary, config, port


def start_distribution(work: str) -> tuple[subprocess.Popen[bytes], str]:
    binary, config, port = distribution(work, "distribution")
    return serve_until_ready([binary, "serve", config], port, "distribution")


def print_figures(figures: dict[str, object], path: str | None) -> None:
    """A benchmark's figures as JSON on stdout, and into `path` if given."""
    print(json.dumps(figures, indent=2))
    if path:
        with open(path, "w") as f:
            json.dump(figures, f, indent=2)


def reference_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for distribution: none of the REGISTRY_* variables, which it reads
    as configuration (REGISTRY_AUTH_FILE, for skopeo and podman, breaks its auth section)."""
    return {k: v for k, v in (env or os.environ).items() if not k.startswith("REGISTRY_")}


def serve_until_ready(
    argv: list[str],
    port: int,
    name: str,
    env: dict[str, str] | None = None,
    ready: int = 200,
    output: IO[bytes] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a reference server on loopback and return it once its /v2/ answers
    `ready` (401 where it wants credentials); its output to `output`, or nowhere."""
    env = reference_env(env)
    sink: IO[bytes] | int = output if output is not None else subprocess.DEVNULL
    process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v2/").status_code == ready:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    sys.exit(f"{name} did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running registry to measure (default: start qreg up)")
    parser.add_argument(
        "--creds",
        metavar="USER:PASSWORD",
        help="account on --url (default: the admin of the cluster it starts)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also measure distribution 2.8 in the same run and print ratios",
    )
    parser.add_argument("--sizes", default="64,512", help="blob sizes in MiB (default 64,512)")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load test")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-bench-")
    cluster = None
    reference = None
    try:
        print("preparing blobs and a 10 x 16 MiB image", file=sys.stderr, flush=True)
        blobs = {int(s) * MiB: make_blob(work, int(s) * MiB) for s in args.sizes.split(",")}
        layout, _ = image_layout(
            os.path.join(work, "layout"), "bench", layers=10, layer_size=16 * MiB
        )
        url = args.url
        user, _, password = (args.creds or "").partition(":")
        if url is None:
            cluster = LocalCluster(os.path.join(work, "qreg")).start()
            url, user, password = cluster.url, "admin", cluster.admin_password
        creds = Credentials(url, user or None, password)
        columns = {"quorum": measure("quorum", url, work, blobs, layout, args.seconds, creds)}
        if args.reference:  # distribution as packaged: no authentication
            reference, ref_url = start_distribution(work)
            columns["distribution"] = measure(
                "distribution", ref_url, work, blobs, layout, args.seconds, Credentials(ref_url)
            )
        print_table(columns)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(columns, f, indent=2)
    finally:
        if cluster is not None:
            cluster.stop()
        if reference is not None:
            reference.terminate()
            reference.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def print_table(columns: dict[str, dict[str, float]]) -> None:
    ours = columns["quorum"]
    theirs = columns.get("distribution")
    width = max(len(k) for k in ours)
    header = f"{'measure':<{width}}  {'quorum':>10}"
    if theirs:
        header += f"  {'distribution':>12}  {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for key, value in ours.items():
        line = f"{key:<{width}}  {value:>10.1f}"
        if theirs:
            other = theirs[key]
            # For times and latencies lower is better: the ratio is theirs / ours.
            lower_better = key.endswith("(s)") or key.endswith("(ms)")
            ratio = (other / value if lower_better else value / other) if value and other else 0.0
            line += f"  {other:>12.1f}  {ratio:>5.2f}x"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
