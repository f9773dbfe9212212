"""Slow clients cannot hold a replica's connections: headers have a deadline, and beyond
the connection cap requests are refused with 503 until the slow ones are cut off."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import httpx
import pytest

from tests.cluster import LocalCluster

pytestmark = pytest.mark.slow

SLOW = 150


def test_slow_header_clients_are_cut_off_and_capped(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QREG_HTTP_HEADER_TIMEOUT_S", "3")
    monkeypatch.setenv("QREG_HTTP_MAX_CONNECTIONS", "100")
    cluster = LocalCluster(str(tmp_path / "data"), replicas=1, tls=True).start()
    host, port = cluster.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=cluster.ca)
    closed_after: list[float] = []
    stop = threading.Event()

    def slowloris() -> None:
        started = time.monotonic()
        try:
            with (
                socket.create_connection((host, int(port)), timeout=30) as raw,
                context.wrap_socket(raw, server_hostname=host) as s,
            ):
                s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}\r\n".encode())
                for n in range(60):  # a header line a second, never the blank line
                    if stop.wait(1.0):
                        return
                    s.sendall(f"X-Slow-{n}: {'x' * 10}\r\n".encode())
        except OSError:
            closed_after.append(time.monotonic() - started)

    threads = [threading.Thread(target=slowloris, daemon=True) for _ in range(SLOW)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        # Over the cap: a clear refusal rather than a hang.
        r = httpx.get(cluster.url + "/v2/", verify=cluster.verify, timeout=10)
        assert r.status_code == 503
        for t in threads:
            t.join(timeout=30)
        assert len(closed_after) == SLOW
        assert max(closed_after) < 20, max(closed_after)
        r = httpx.get(cluster.url + "/v2/", verify=cluster.verify, timeout=10)
        assert r.status_code == 401  # served again (and asked to sign in)
    finally:
        stop.set()
        cluster.stop()
