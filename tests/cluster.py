"""Starting real registry processes for tests, through the `qreg up` launcher."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from typing import Any

import httpx

from cli import ports
from tests.registry_auth import TokenAuth, remember_credentials


def free_port_block(size: int = 1) -> int:
    """A port P such that P..P+size-1 are free now (outside the ephemeral range)."""
    return ports.free_block(size)


def join_ports() -> list[str]:
    """Free Raft and gRPC addresses for `qreg join` (its defaults, HTTP port + 1000 and
    + 2000, may be taken on a machine running many test clusters)."""
    return [
        "--raft-address",
        f"127.0.0.1:{free_port_block()}",
        "--grpc-address",
        f"127.0.0.1:{free_port_block()}",
    ]


# Every test cluster's admin has this password unless the test picks another.
ADMIN_PASSWORD = "admin-password"


def admin_auth(verify: ssl.SSLContext | bool = True) -> TokenAuth:
    """The admin of a test cluster, for helpers that get a URL rather than a cluster."""
    return TokenAuth("admin", ADMIN_PASSWORD, verify)


class LocalCluster:
    """`qreg up` in a subprocess; `url` is replica 0's. Plain HTTP unless `tls`
    (replicas always talk to each other over mutual TLS)."""

    def __init__(
        self,
        data: str,
        replicas: int = 1,
        tls: bool = False,
        admin_password: str = ADMIN_PASSWORD,
        caches: tuple[str, ...] = (),
        cache_max_bytes: int = 1 << 30,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data = data
        # Extra environment of every replica (QREG_SECTION_KEY settings), restarts too.
        self.env = {**os.environ, **(env or {})}
        self.replicas = replicas
        self.cache_names = caches
        self.cache_max_bytes = cache_max_bytes
        self.caches: dict[str, str] = {}  # name -> URL
        self.tls = tls
        self.admin_password = admin_password
        self._auth: TokenAuth | None = None
        self.port = free_port_block(replicas + len(caches))
        self.process: subprocess.Popen[str] | None = None
        self.urls: list[str] = []
        self.pids: list[int] = []
        self._restarted: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    @property
    def ca(self) -> str:
        """The cluster CA certificate that `qreg up` wrote."""
        return os.path.join(self.data, "ca.crt")

    @property
    def verify(self) -> ssl.SSLContext | bool:
        if not self.tls:
            return True
        return ssl.create_default_context(cafile=self.ca)

    @property
    def auth(self) -> TokenAuth:
        """The admin's credentials for httpx: `httpx.get(url, auth=cluster.auth)`."""
        if self._auth is None:
            self._auth = TokenAuth("admin", self.admin_password, self.verify)
        return self._auth

    def client(self, index: int = 0, **kwargs: Any) -> httpx.Client:
        """An httpx client for one replica, signed in as the admin."""
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.urls[index], auth=self.auth, verify=self.verify, **kwargs)

    def start(self, timeout: float = 60.0) -> LocalCluster:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "up",
                "--data",
                self.data,
                "--port",
                str(self.port),
                "--replicas",
                str(self.replicas),
                "--admin-password",
                self.admin_password,
            ]
            + ([] if self.tls else ["--insecure-http"])
            + (
                [
                    "--caches",
                    ",".join(self.cache_names),
                    "--cache-max-bytes",
                    str(self.cache_max_bytes),
                ]
                if self.cache_names
                else []
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        said: list[str] = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                code = self.process.wait()
                self._forget_process()
                raise RuntimeError(
                    f"qreg up exited with {code}: {''.join(said[-20:])}(replica logs: "
                    f"{self.data}/replica-*/replica.log)"
                )
            said.append(line)
            if line.startswith("ready "):
                words = line.split()[1:]
                self.urls = [w for w in words if "=" not in w]
                self.caches = dict(w.split("=", 1) for w in words if "=" in w)
                remember_credentials(self.urls, "admin", self.admin_password)
                self.pids = [
                    int(
                        httpx.get(
                            u + "/health", verify=self.verify, auth=("admin", self.admin_password)
                        ).json()["pid"]
                    )
                    for u in self.urls
                ]
                return self
        raise RuntimeError("qreg up did not print ready in time")

    def replica_pid(self, index: int = 0) -> int:
        return self.pids[index]

    def signal(self, index: int, sig: int) -> None:
        os.kill(self.pids[index], sig)

    def sigkill(self, index: int) -> None:
        """SIGKILL one replica; `qreg up` keeps the others running."""
        os.kill(self.pids[index], signal.SIGKILL)
        process = self._restarted.pop(index, None)
        if process is not None:
            process.wait(timeout=10)

    def wait_stopped(self, index: int, timeout: float = 60.0) -> None:
        """Until a replica told to stop has exited."""
        process = self._restarted.pop(index, None)
        if process is not None:
            process.wait(timeout=timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(self.pids[index]):
            time.sleep(0.05)

    def restart(self, index: int, timeout: float = 60.0) -> None:
        """Start a killed replica again from its config, outside the launcher."""
        config = os.path.join(self.data, f"replica-{index}", "replica.toml")
        log = open(os.path.join(self.data, f"replica-{index}", "replica.log"), "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--config", config],
            stdout=log,
            stderr=log,
            env=self.env,
        )
        log.close()
        self._restarted[index] = process
        self.pids[index] = process.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(
                    self.urls[index] + "/v2/", timeout=1, verify=self.verify
                ).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"replica {index} did not come back")

    def join_replica(self, data: str, replica_id: str) -> tuple[subprocess.Popen[bytes], str]:
        """`qreg join` a new replica over plain HTTP and start it: (its process, its URL).
        Its log is DATA/replica.log."""
        config0 = f"{self.data}/replica-0/replica.toml"
        token = subprocess.run(
            [sys.executable, "-m", "cli.main", "join-token", "--config", config0],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        port = free_port_block()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "join",
                "--existing",
                self.urls[0],
                "--token",
                token,
                "--replica-id",
                replica_id,
                "--data",
                data,
                "--port",
                str(port),
                "--no-start",
                "--insecure-http",
                *join_ports(),
            ],
            check=True,
            capture_output=True,
        )
        with open(os.path.join(data, "replica.log"), "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--config", f"{data}/replica.toml"],
                stdout=log,
                stderr=log,
            )
        return process, f"http://127.0.0.1:{port}"

    def health(self, index: int) -> dict:
        return httpx.get(self.urls[index] + "/health", timeout=5, verify=self.verify).json()

    def leader(
        self, timeout: float = 30.0, among: list[int] | None = None, excluding: int | None = None
    ) -> int:
        """Index of the replica that is leader, once the given replicas agree on one
        (and it is not `excluding`)."""
        among = list(range(len(self.urls))) if among is None else among
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                views = [self.health(i) for i in among]
                leaders = {v["leader"] for v in views}
                if len(leaders) == 1 and None not in leaders:
                    index = int(leaders.pop().rsplit("-", 1)[1])
                    if index != excluding:
                        return index
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("no agreed leader")

    def stop(self) -> int:
        for pid in self.pids:  # a paused replica would ignore SIGTERM
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for process in self._restarted.values():
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        self._restarted.clear()
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

    def kill_all(self) -> None:
        """SIGKILL every replica at once, then reap the launcher."""
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in self._restarted.values():
            process.wait(timeout=10)
        self._restarted.clear()
        if self.process is not None:
            self.process.wait(timeout=30)
            self._forget_process()


def _alive(pid: int) -> bool:
    """Running (not exited, nor a zombie its launcher has yet to reap)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
