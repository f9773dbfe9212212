"""A replica whose metadata was changed behind the state machine's back raises the alarm,
and qreg verify names where it differs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import lmdb
import pytest

from tests.cluster import LocalCluster
from tests.replication.test_three_replicas import push_image

pytestmark = pytest.mark.slow


def _qreg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_a_corrupted_key_is_noticed_within_a_minute(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    config = os.path.join(cluster.data, "replica-0", "replica.toml")
    try:
        for n in range(5):
            push_image(cluster.urls[n % 3], "div/app", f"t{n}", f"t{n}")
        healthy = _qreg("verify", "--config", config)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "same metadata" in healthy.stdout

        victim = 2
        cluster.sigkill(victim)
        env = lmdb.open(
            os.path.join(cluster.data, f"replica-{victim}", "metadata"), map_size=1 << 36
        )
        with env.begin(write=True) as txn:  # one tag now points elsewhere
            txn.put(b"t\0div/app\0t3", b"sha256:" + b"0" * 64)
        env.close()
        cluster.restart(victim)

        deadline = time.monotonic() + 60
        while True:
            health = httpx.get(cluster.urls[victim] + "/health", timeout=5).json()
            if health.get("diverged_at") is not None:
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.5)
        metrics = httpx.get(cluster.urls[victim] + "/metrics", timeout=5).text
        assert "qreg_state_diverged 1.0" in metrics
        status = _qreg("status", "--url", cluster.urls[0], "--config", config)
        assert status.returncode == 1 and "DIVERGED" in status.stdout, status.stdout
        found = _qreg("verify", "--config", config)
        assert found.returncode == 1 and "t/d" in found.stdout, found.stdout
        # The healthy replicas raised nothing.
        for i in (0, 1):
            assert "diverged_at" not in httpx.get(cluster.urls[i] + "/health", timeout=5).json()
    finally:
        cluster.stop()
