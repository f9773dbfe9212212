"""A far site behind a slow link, built from network namespaces the test creates.

    host loopback (the cluster) <- relay -> [core ns] ==veth, tbf RATE==> [edge ns]

The edge namespace holds the far users and their cache. Its loopback reaches the
cluster at the cluster's own address (127.0.0.1:PORT, so TLS names still match)
through a relay that crosses the veth pair, whose core end `tc tbf` limits: every
byte from the cluster to the edge goes through that bottleneck, with a one-way delay
added by the relay. A port in the edge namespace can also be exposed on the host's
loopback, so the cluster can check the health of a cache that lives there.

Needs root and iproute2; only the namespaces made here are ever addressed.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class SlowLink:
    def __init__(self, rate_mbit: int = 50, delay_ms: float = 20.0) -> None:
        tag = f"{os.getpid() % 100000}{random.randrange(100)}"
        self.core, self.edge = f"qreg-core-{tag}", f"qreg-edge-{tag}"
        self.rate_mbit, self.delay_ms = rate_mbit, delay_ms
        subnet = random.randrange(1, 250)
        self.core_ip, self.edge_ip = f"10.213.{subnet}.1", f"10.213.{subnet}.2"
        self._veth = (f"qc{tag}", f"qe{tag}")
        self._relay: subprocess.Popen[str] | None = None
        self._routes: list[str] = []

    def __enter__(self) -> SlowLink:
        core_dev, edge_dev = self._veth
        _ip("netns", "add", self.core)
        try:
            _ip("netns", "add", self.edge)
            _ip("link", "add", core_dev, "type", "veth", "peer", "name", edge_dev)
            _ip("link", "set", core_dev, "netns", self.core)
            _ip("link", "set", edge_dev, "netns", self.edge)
            for ns, dev, address in (
                (self.core, core_dev, self.core_ip),
                (self.edge, edge_dev, self.edge_ip),
            ):
                _ip("-n", ns, "addr", "add", f"{address}/30", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
            # The bottleneck: what leaves the core end, i.e. everything sent to the edge.
            _ip(
                "netns",
                "exec",
                self.core,
                "tc",
                "qdisc",
                "add",
                "dev",
                core_dev,
                "root",
                "tbf",
                "rate",
                f"{self.rate_mbit}mbit",
                "burst",
                "64kb",
                "latency",
                "100ms",
            )
        except BaseException:
            self._delete()
            raise
        return self

    def reach_host_port(self, port: int) -> None:
        """Make the host's 127.0.0.1:PORT answer at 127.0.0.1:PORT in the edge namespace,
        across the slow link."""
        self._routes += [
            f"{self.edge}/127.0.0.1:{port}={self.edge}/{self.core_ip}:{port}@{self.delay_ms}",
            f"{self.core}/{self.core_ip}:{port}=127.0.0.1:{port}",
        ]

    def expose_edge_port(self, port: int) -> None:
        """Make the edge's 127.0.0.1:PORT answer at the host's 127.0.0.1:PORT (no limit)."""
        self._routes.append(f"127.0.0.1:{port}={self.edge}/127.0.0.1:{port}")

    def start_relay(self) -> None:
        self._relay = subprocess.Popen(
            [sys.executable, "-m", "tests.netns_relay", *self._routes],
            cwd=_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._relay.stdout is not None
        if self._relay.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the relay did not start ({self._relay.wait()})")

    def in_edge(self, argv: list[str]) -> list[str]:
        """A command line that runs in the edge namespace."""
        return ["ip", "netns", "exec", self.edge, *argv]

    def __exit__(self, *exc: object) -> None:
        if self._relay is not None:
            self._relay.kill()
            self._relay.wait()
            if self._relay.stdout is not None:
                self._relay.stdout.close()
        self._delete()

    def _delete(self) -> None:
        for ns in (self.edge, self.core):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
