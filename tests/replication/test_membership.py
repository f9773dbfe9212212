"""Joining a fourth replica to a three-replica cluster under load, then removing one."""

from __future__ import annotations

import itertools
import os
import signal
import ssl
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.cluster import LocalCluster, free_port_block, join_ports
from tests.registry_auth import TokenAuth
from tests.replication.test_maintenance import qreg
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow


def test_join_under_load_then_remove(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    joined: subprocess.Popen[bytes] | None = None
    acknowledged: dict[str, str] = {}
    stop = threading.Event()

    def writer() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            try:
                acknowledged[f"j{n}"] = push_image(
                    cluster.urls[n % 3], "join/app", f"j{n}", f"j{n}"
                ).digest
            except httpx.HTTPError:
                time.sleep(0.1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)
        config0 = f"{cluster.data}/replica-0/replica.toml"
        token = qreg("join-token", "--config", config0).strip()
        assert token.startswith("qreg-join-")
        port = free_port_block()
        data = f"{cluster.data}/replica-3"
        out = qreg(
            "join",
            "--existing",
            cluster.urls[1],
            "--token",
            token,
            "--replica-id",
            "replica-3",
            "--data",
            data,
            "--port",
            str(port),
            "--no-start",
            "--insecure-http",
            *join_ports(),
        )
        assert "not yet a member" in out and "seeded from a snapshot" in out
        with open(os.path.join(data, "replica.log"), "ab") as log:
            joined = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--config", f"{data}/replica.toml"],
                stdout=log,
                stderr=log,
            )
        url = f"http://127.0.0.1:{port}"
        time.sleep(2.0)
        stop.set()
        thread.join(timeout=30)
        # The new replica converges on everything acknowledged, through writes and reads.
        deadline = time.monotonic() + 30
        while True:
            try:
                tags = (
                    httpx.get(f"{url}/v2/join/app/tags/list", auth=cluster.auth, timeout=5)
                    .json()
                    .get("tags", [])
                )
                if set(acknowledged) <= set(tags):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the joined replica did not converge"
            time.sleep(0.2)
        push_image(url, "join/app", "through-new", "new")
        status = qreg("status", "--url", url, "--config", config0)
        assert "replica-3" in status and len(status.splitlines()) == 5
        # Remove a dead replica: the rest go on with a majority of three.
        cluster.sigkill(1)
        out = qreg("remove", "replica-1", "--config", config0)
        assert "removed replica-1" in out
        status = qreg("status", "--url", cluster.urls[0], "--config", config0)
        assert "replica-1" not in status and len(status.splitlines()) == 4
        cluster.signal(2, signal.SIGSTOP)  # one more down of the three left: still a majority
        deadline = time.monotonic() + 20
        while True:  # if the paused replica led, the other two elect a leader first
            try:
                push_image(cluster.urls[0], "join/app", "after-remove", "rm")
                break
            except httpx.HTTPStatusError as e:
                assert e.response.status_code == 503 and time.monotonic() < deadline
                time.sleep(0.2)
        cluster.signal(2, signal.SIGCONT)
    finally:
        stop.set()
        if joined is not None:
            joined.terminate()
            joined.wait(timeout=30)
        cluster.stop()


def test_install_then_join_a_second_replica_over_https(tmp_path) -> None:
    ports = free_port_block(2)
    out = qreg(
        "install",
        "--data",
        str(tmp_path / "first"),
        "--port",
        str(ports),
        "--raft-address",
        f"127.0.0.1:{free_port_block()}",
    )
    token = next(word for word in out.split() if word.startswith("qreg-join-"))
    password = out.split("admin password: ", 1)[1].split()[0]  # generated, shown once
    ca = str(tmp_path / "first" / "tls" / "ca.crt")
    verify = ssl.create_default_context(cafile=ca)
    admin = TokenAuth("admin", password, verify)
    processes = []
    try:
        for name in ("first", "second"):
            if name == "second":  # the joiner trusts the CA the token pins, nothing else
                qreg(
                    "join",
                    "--existing",
                    f"https://127.0.0.1:{ports}",
                    "--token",
                    token,
                    "--replica-id",
                    "replica-1",
                    "--data",
                    str(tmp_path / name),
                    "--port",
                    str(ports + 1),
                    "--no-start",
                    *join_ports(),
                )
            with open(tmp_path / f"{name}.log", "ab") as log:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "cli.main",
                            "serve",
                            "--config",
                            str(tmp_path / name / "replica.toml"),
                        ],
                        stdout=log,
                        stderr=log,
                    )
                )
            url = f"https://127.0.0.1:{ports + len(processes) - 1}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/health", timeout=1, verify=verify).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{name} did not become healthy"
                time.sleep(0.2)
        digest = push_image(
            f"https://127.0.0.1:{ports}", "installed/app", "1", "inst", verify=verify, auth=admin
        ).digest
        r = httpx.head(
            f"https://127.0.0.1:{ports + 1}/v2/installed/app/manifests/1",
            auth=admin,
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            verify=verify,
        )
        assert r.headers["Docker-Content-Digest"] == digest
        # The joiner's certificate comes from the same CA (its gRPC peers accept it).
        with open(tmp_path / "second" / "tls" / "ca.crt", "rb") as a, open(ca, "rb") as b:
            assert a.read() == b.read()
        assert "replica-1" in qreg(
            "status",
            "--url",
            f"https://127.0.0.1:{ports}",
            "--ca",
            ca,
            "--config",
            str(tmp_path / "first" / "replica.toml"),
        )
    finally:
        for p in processes:
            p.terminate()
            p.wait(timeout=30)


def test_growing_one_replica_to_two_keeps_writes_going(tmp_path) -> None:
    # Added before it ran, the second replica counted toward a majority it could not
    # answer: 11-17 s without writes. Now it asks to be added once it runs.
    cluster = LocalCluster(str(tmp_path / "data"), replicas=1).start()
    outcomes: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            try:
                push_image(cluster.url, "grow/app", f"g{n}", f"g{n}")
                outcomes.append(201)
            except httpx.HTTPStatusError as e:
                outcomes.append(e.response.status_code)
                errors.append(f"{e.request.method} {e.request.url}: {e.response.text[:200]}")

    thread = threading.Thread(target=writer, daemon=True)
    process = None
    try:
        thread.start()
        time.sleep(0.5)
        process, url = cluster.join_replica(str(tmp_path / "second"), "replica-1")
        deadline = time.monotonic() + 60
        while (
            len(
                httpx.get(f"{cluster.url}/api/v0/replicas", auth=cluster.auth, timeout=10).json()[
                    "replicas"
                ]
            )
            < 2
        ):
            assert time.monotonic() < deadline, "the second replica was never listed"
            time.sleep(0.2)
        with open(tmp_path / "second" / "replica.log") as f:
            assert '"joined: a voting member now' in f.read()
        time.sleep(1.0)
        stop.set()
        thread.join(30)
        assert outcomes and set(outcomes) == {201}, errors[:3]
        assert not os.path.exists(tmp_path / "second" / "join-request.json")

        # A member's addresses or id, given again, are refused before anything is written.
        token = qreg("join-token", "--config", f"{cluster.data}/replica-0/replica.toml").strip()
        taken_port = int(cluster.url.rsplit(":", 1)[1])
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "join",
                "--existing",
                cluster.url,
                "--token",
                token,
                "--replica-id",
                "replica-9",
                "--data",
                str(tmp_path / "dup"),
                "--port",
                str(taken_port),
                "--insecure-http",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode != 0 and "in use" in refused.stderr, refused
        assert not os.path.exists(tmp_path / "dup" / "replica.toml")
        members = httpx.get(f"{url}/api/v0/replicas", auth=cluster.auth, timeout=10).json()[
            "replicas"
        ]
        first = next(r for r in members if r["replica_id"] == "replica-0")
        for field, value in (
            ("replica_id", "replica-1"),
            ("raft_address", first.get("raft_address")),
            ("http_url", cluster.url),
        ):
            if value is None:
                continue  # not shown to this caller
            body = {
                "token": token,
                "replica_id": "replica-9",
                "raft_address": "127.0.0.9:1",
                "http_url": "http://127.0.0.9:1",
                "grpc_address": "127.0.0.9:2",
                field: value,
            }
            r = httpx.post(f"{cluster.url}/api/v0/join", json=body, timeout=10)
            assert r.status_code == 400 and "already" in r.text, (field, r.text)
    finally:
        stop.set()
        if process is not None:
            process.terminate()
            process.wait(30)
        cluster.stop()


def test_a_removed_replica_that_still_runs_stops_and_says_so(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        leader = cluster.leader()
        removed = (leader + 1) % 3
        config0 = f"{cluster.data}/replica-{leader}/replica.toml"
        out = qreg("remove", f"replica-{removed}", "--config", config0)  # it is still running
        assert f"removed replica-{removed}" in out
        deadline = time.monotonic() + 40
        while True:
            health = httpx.get(cluster.urls[removed] + "/health", timeout=5).json()
            if "removed" in health:
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.5)
        assert "was removed from the cluster" in health["removed"]
        term = health["term"]
        r = httpx.put(
            f"{cluster.urls[removed]}/v2/gone/app/manifests/x",
            content=b"{}",
            auth=cluster.auth,
            timeout=10,
        )
        assert r.status_code == 503 and "removed from the cluster" in r.text, r.text
        time.sleep(3)  # no more campaigning: the term stays
        assert httpx.get(cluster.urls[removed] + "/health", timeout=5).json()["term"] == term
        with open(f"{cluster.data}/replica-{removed}/replica.log") as f:
            assert '"event": "removed"' in f.read()
        push_image(cluster.urls[leader], "still/app", "1", "ok")  # the others go on
    finally:
        cluster.stop()
