"""The monitoring example: its alert rules pass promtool's checks and unit tests, and a
real Prometheus scraping a three-replica cluster fires QregReplicaDown when a replica
is killed (the test's copy of the rules waits 3 s where the example waits minutes)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import httpx
import pytest

from tests.cluster import LocalCluster, free_port_block

pytestmark = pytest.mark.slow

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "cluster-examples", "monitoring")


def promtool(*args: str) -> str:
    assert shutil.which("promtool"), "promtool is not installed; the test command installs it"
    done = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=EXAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_alert_rules_pass_promtool() -> None:
    assert "SUCCESS" in promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


def test_prometheus_sees_a_replica_go_down(tmp_path) -> None:
    assert shutil.which("prometheus"), "prometheus is not installed; the test command installs it"
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    prometheus = None
    try:
        metrics = httpx.get(cluster.urls[0] + "/metrics").text
        for name in (
            "qreg_raft_has_quorum",
            "qreg_raft_log_entries",
            "qreg_raft_proposal_seconds_bucket",
            "qreg_disk_free_bytes",
            'qreg_tls_cert_expiry_timestamp_seconds{cert="ca"}',
            "qreg_blobs_to_sync",
        ):
            assert name in metrics, name
        with open(os.path.join(EXAMPLE, "alerts.yml")) as f:
            rules = re.sub(r"for: \d+m", "for: 3s", f.read())
        (tmp_path / "alerts.yml").write_text(rules)
        targets = ", ".join(f'"{u.split("://")[1]}"' for u in cluster.urls)
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [alerts.yml]\n"
            "scrape_configs:\n"
            f"  - job_name: qreg\n    static_configs: [{{targets: [{targets}]}}]\n"
        )
        port = free_port_block()
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{port}"

        def firing() -> list[dict]:
            try:
                alerts = httpx.get(api + "/api/v1/alerts", timeout=2).json()["data"]["alerts"]
            except (httpx.HTTPError, ValueError, KeyError):
                return []
            return [a for a in alerts if a["state"] == "firing"]

        def scraped() -> bool:
            try:
                r = httpx.get(api + "/api/v1/query", params={"query": "up"}, timeout=2)
                return len(r.json()["data"]["result"]) == 3
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        deadline = time.monotonic() + 30
        while not scraped():
            assert time.monotonic() < deadline, "prometheus scraped nothing"
            time.sleep(0.5)
        time.sleep(5)
        assert not [a for a in firing() if a["labels"]["alertname"] == "QregReplicaDown"]
        cluster.sigkill(2)
        down = cluster.urls[2].split("://")[1]
        deadline = time.monotonic() + 60
        while True:
            hits = [
                a
                for a in firing()
                if a["labels"]["alertname"] == "QregReplicaDown" and a["labels"]["instance"] == down
            ]
            if hits:
                break
            assert time.monotonic() < deadline, firing()
            time.sleep(1)
        assert "does not answer" in hits[0]["annotations"]["summary"]
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=20)
        cluster.stop()


def test_the_dashboard_and_alerts_use_only_metrics_that_exist() -> None:
    """Every qreg_* name in the Grafana dashboard and the alerts is one a replica or a
    cache exports (a renamed metric would leave a panel silently empty)."""
    import json

    from cache.app import CacheMetrics
    from cache.store import BoundedStore
    from replica.metrics import Metrics

    names = r"^(?:# TYPE )?(qreg_\w+)"  # labelled metrics have no sample before use
    exported = set(re.findall(names, Metrics().render().decode(), re.M))
    exported |= {
        "qreg_raft_term",
        "qreg_raft_is_leader",
        "qreg_raft_commit_index",
        "qreg_raft_applied_index",
        "qreg_raft_has_quorum",
        "qreg_raft_log_entries",
        "qreg_blobs_to_sync",
        "qreg_blobs_unavailable",
        "qreg_disk_free_bytes",
        "qreg_disk_total_bytes",
        "qreg_tls_cert_expiry_timestamp_seconds",
        "qreg_scans_total",
        "qreg_scans_queued",
        "qreg_gc_files_pending",
    }  # from collectors that need a running replica (checked live in the test above)
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        from prometheus_client import generate_latest

        cache = CacheMetrics(BoundedStore(scratch, 1 << 20))
        exported |= set(re.findall(names, generate_latest(cache.registry).decode(), re.M))
    with open(os.path.join(EXAMPLE, "grafana-dashboard.json")) as f:
        dashboard = json.load(f)
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"qreg_\w+", target["expr"])
    }
    with open(os.path.join(EXAMPLE, "alerts.yml")) as f:
        used |= set(re.findall(r"qreg_\w+", f.read()))
    base = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in exported} | exported
    missing = {
        n
        for n in used
        if n not in base and re.sub(r"_(bucket|sum|count|total)$", "", n) not in base
    }
    assert not missing, missing
