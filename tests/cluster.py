"""Starting real registry processes for tests, through the `qreg up` launcher."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port_block(size: int = 1) -> int:
    """A port P such that P..P+size-1 were all free a moment ago."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + size >= 65535:
            continue
        ok = True
        for port in range(base + 1, base + size):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return int(base)
    raise RuntimeError("no free block of ports")


class LocalCluster:
    """`qreg up` in a subprocess; `url` is replica 0's."""

    def __init__(self, data: str, replicas: int = 1) -> None:
        self.data = data
        self.replicas = replicas
        self.port = free_port_block(replicas)
        self.process: subprocess.Popen[str] | None = None
        self.urls: list[str] = []

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def start(self, timeout: float = 60.0) -> "LocalCluster":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--data", self.data, "--port", str(self.port),
             "--replicas", str(self.replicas), "--insecure-http"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"qreg up exited with {self.process.wait()}")
            if line.startswith("ready "):
                self.urls = line.split()[1:]
                return self
        raise RuntimeError("qreg up did not print ready in time")

    def replica_pid(self, index: int = 0) -> int:
        return int(httpx.get(self.urls[index] + "/health").json()["pid"])

    def stop(self) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._forget_process()
        return code

    def _forget_process(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def kill_replica(self, index: int = 0) -> None:
        """SIGKILL one replica process, then stop the launcher around it."""
        os.kill(self.replica_pid(index), signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
            self._forget_process()
