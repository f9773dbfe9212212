"""The cluster page on three replicas: it refreshes itself and shows a replica going
down; the dashboard says so; an administrator gets a join command."""

from __future__ import annotations

import pytest

from tests.cluster import LocalCluster
from tests.ui.conftest import sign_in

pytestmark = pytest.mark.slow


def test_the_cluster_page_follows_a_replica_going_down(watched, tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        page = watched.page
        sign_in(page, cluster.url, "admin", cluster.admin_password)
        page.goto(cluster.url + "/cluster")
        assert page.locator("#cluster-live tbody tr .badge.ok").count() == 3
        watched.shot("cluster")
        victim = 2 if cluster.leader() != 2 else 1
        cluster.sigkill(victim)
        # No reload: the page fetches itself again every few seconds.
        page.locator("#cluster-live .badge.bad", has_text="down").wait_for(timeout=20_000)
        assert f"replica-{victim}" in page.inner_text("#cluster-live")
        page.click("text=Add a replica")
        page.locator("#join code").wait_for()
        assert page.inner_text("#join code").startswith(f"qreg join --existing {cluster.url}")
        page.goto(cluster.url + "/")
        assert f"Replica replica-{victim} does not answer" in page.inner_text("#attention")
        watched.clean()
    finally:
        cluster.stop()
