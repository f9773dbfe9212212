"""The web UI in a browser: sign in, the dashboard, repositories (create, search, a
tag's pull line, delete a tag by typing DELETE), settings (the garbage-collection
schedule), the API console; and its defences, over plain HTTP."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests import tuf
from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout
from tests.ui.conftest import sign_in

pytestmark = pytest.mark.slow


def test_an_admin_signs_in_and_manages_a_repository(
    cluster: LocalCluster, watched, tmp_path
) -> None:
    page = watched.page
    page.goto(cluster.url + "/repositories")
    assert "/login" in page.url  # signed out: sent to sign in, then back
    page.fill("#username", "admin")
    page.fill("#password", cluster.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(cluster.url + "/repositories")
    watched.shot("repositories-empty")
    assert "No repositories yet" in page.inner_text("main")

    page.click("text=New repository")
    page.select_option("#repo-namespace", "admin")
    page.fill("#repo-name", "web")
    page.click("#new-repository-form button[type=submit]")
    page.wait_for_selector("a[href='/repositories/admin/web']")

    layout, manifest = image_layout(str(tmp_path / "layout"), "ui-web")
    for tag in ("lona", "keep"):
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:latest",
            f"docker://{cluster.host}/admin/web:{tag}",
        )
    page.fill("input[data-filter]", "we")
    page.wait_for_selector("a[href='/repositories/admin/web']")
    page.fill("input[data-filter]", "nothing-like-it")
    page.wait_for_selector("text=No repository you may read matches")

    page.goto(cluster.url + "/repositories/admin/web")
    watched.shot("repository")
    rows = page.inner_text("tbody")
    assert "lona" in rows and "keep" in rows and manifest.digest[7:19] in rows
    assert f"docker pull {cluster.host}/admin/web:lona" in rows
    assert "by admin" in rows  # who pushed it
    page.click("button[aria-label='Delete tag lona']")
    page.click("#delete-tag button[type=submit]")  # not typed yet: the browser refuses
    assert page.is_visible("#delete-tag")
    page.fill("#delete-confirm", "DELETE")
    page.click("#delete-tag button[type=submit]")
    page.wait_for_function("!document.body.innerText.includes('lona')")
    with cluster.client() as client:
        assert client.get("/v2/admin/web/tags/list").json()["tags"] == ["keep"]

    page.goto(cluster.url + "/settings")
    page.fill("#gc-cron", "0 0 0 * * *")
    page.click("text=Save schedule")
    page.wait_for_selector("text=Next run:")
    watched.shot("settings")
    with cluster.client() as client:
        assert client.get("/api/v0/gc").json()["schedule"]["cron"] == "0 0 0 * * *"

    page.goto(cluster.url + "/")
    watched.shot("dashboard")
    assert "repositories" in page.inner_text("main")
    watched.clean()


def test_the_api_console_calls_the_api_as_the_signed_in_user(
    cluster: LocalCluster, watched
) -> None:
    page = watched.page
    sign_in(page, cluster.url, "admin", cluster.admin_password)
    page.goto(cluster.url + "/api-docs")
    operation = page.locator("[id^='operations-'][id$='-get_api_v0_accounts']")
    operation.locator(".opblock-summary").click()
    operation.locator("text=Try it out").click()
    operation.locator("text=Execute").click()
    operation.locator(".live-responses-table tbody .response-col_status").wait_for()
    assert (
        "200" in operation.locator(".live-responses-table tbody .response-col_status").inner_text()
    )
    body = operation.locator(".live-responses-table .highlight-code").inner_text()
    assert '"admin"' in body
    watched.shot("api-docs")
    watched.clean()


def test_changes_need_the_csrf_token_and_the_own_origin(cluster: LocalCluster) -> None:
    with httpx.Client(base_url=cluster.url, follow_redirects=False) as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = browser.post(
            "/login",
            data={
                "csrf": token,
                "username": "admin",
                "password": cluster.admin_password,
                "next": "//evil.example/",
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/"  # never off-site
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/").text).group(1)
        body = {"name": "csrf", "visibility": "private"}
        assert browser.post("/api/v0/repositories/admin", json=body).status_code == 403
        r = browser.post(
            "/api/v0/repositories/admin",
            json=body,
            headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
        )
        assert r.status_code == 403
        r = browser.post("/api/v0/repositories/admin", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
        # A form post from elsewhere (no JSON, no token) never signs anyone out or in.
        assert browser.post("/logout", data={}).status_code == 403
    with httpx.Client(base_url=cluster.url, follow_redirects=False) as stranger:
        r = stranger.get("/settings")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        page = stranger.get("/login", params={"next": "/x"})
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = stranger.post(
            "/login",
            data={"csrf": token, "username": "<script>alert(1)</script>", "password": "wrong"},
        )
        assert r.status_code == 401
        assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text


def test_a_user_who_is_not_an_admin_never_sees_admin_pages(cluster: LocalCluster) -> None:
    with cluster.client() as admin:
        r = admin.post(
            "/api/v0/accounts",
            json={"name": "moby", "password": "moby password 1", "global_role": "read-only"},
        )
        assert r.status_code == 201
    with httpx.Client(base_url=cluster.url, follow_redirects=False) as browser:
        token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text).group(1)
        browser.post(
            "/login", data={"csrf": token, "username": "moby", "password": "moby password 1"}
        )
        assert browser.get("/settings").status_code == 403
        assert 'href="/settings"' not in browser.get("/").text


def test_the_logs_page_follows_new_lines_and_shows_the_audit_log(
    cluster: LocalCluster, watched
) -> None:
    page = watched.page
    sign_in(page, cluster.url, "admin", cluster.admin_password)
    page.goto(cluster.url + "/logs")
    page.locator("#log-lines tbody tr").first.wait_for()
    page.select_option("#log-level", "warning")
    # A failed sign-in elsewhere is logged; the page shows it without a reload.
    httpx.get(cluster.url + "/api/v0/accounts", auth=("nobody", "wrong password"))
    page.locator("#log-lines tbody tr", has_text="authentication failed").first.wait_for(
        timeout=15_000
    )
    page.fill("#log-q", "no such text anywhere")
    page.wait_for_function("document.querySelectorAll('#log-lines tbody tr').length === 0")
    watched.shot("logs")
    page.goto(cluster.url + "/logs?tab=audit")
    assert "put_account" in page.inner_text("main") or "set_collection_schedule" in page.inner_text(
        "main"
    )
    watched.clean()


PAGES = [
    "/",
    "/repositories",
    "/repositories/admin/every",
    "/repositories/admin/every?tab=settings",
    "/orgs",
    "/orgs/every",
    "/orgs/every?tab=repositories",
    "/orgs/every/teams/crew",
    "/users",
    "/users/admin",
    "/cluster",
    "/activity",
    "/activity?tab=hooks",
    "/settings",
    "/logs",
    "/logs?tab=audit",
    "/api-docs",
]


def test_every_page_renders_cleanly_wide_and_narrow(
    cluster: LocalCluster, browser, tmp_path
) -> None:
    from tests.ui.conftest import Watched

    with cluster.client() as admin:
        admin.post("/api/v0/repositories/admin", json={"name": "every", "visibility": "public"})
        admin.post("/api/v0/accounts", json={"name": "every", "is_org": True})
        admin.post("/api/v0/accounts/every/teams", json={"name": "crew"})
    for width, height in ((1280, 800), (420, 860)):
        context = browser.new_context(viewport={"width": width, "height": height})
        watched = Watched(context.new_page(), str(tmp_path / f"screens-{width}"))
        page = watched.page
        sign_in(page, cluster.url, "admin", cluster.admin_password)
        for path in PAGES:
            response = page.goto(cluster.url + path)
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("networkidle")
            assert page.locator("main h1").count() == 1, path
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} is {overflow}px wider than a {width}px window"
            watched.shot(path.strip("/").replace("/", "-").replace("?", "-") or "dashboard")
        watched.clean()
        context.close()


def test_a_signed_tag_shows_signed_and_the_policy_is_set_from_settings(
    cluster: LocalCluster, watched, tmp_path
) -> None:
    layout, manifest = image_layout(str(tmp_path / "layout"), "ui-trusted")
    for tag in ("v1", "unsigned"):
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:latest",
            f"docker://{cluster.host}/admin/trusted:{tag}",
        )
    gun = f"{cluster.host}/admin/trusted"
    repo = tuf.Repository(gun)
    with cluster.client() as client:
        base = f"/v2/{gun}/_trust/tuf/"
        root = repo.root(client.get(base + "timestamp.key").json())
        targets = repo.targets({"v1": tuf.target(manifest.digest, len(manifest.data))}, 1)
        files = {"root": root, "targets": targets}
        files["snapshot"] = repo.snapshot(files, 1)
        assert client.post(base, files=tuf.multipart(files)).status_code == 200

    page = watched.page
    sign_in(page, cluster.url, "admin", cluster.admin_password)
    page.goto(cluster.url + "/repositories/admin/trusted")
    row = page.inner_text("tr:has-text('v1')")
    assert "Signed" in row
    assert "Signed" not in page.inner_text("tr:has-text('unsigned')")
    watched.shot("signed-tag")

    page.goto(cluster.url + "/repositories/admin/trusted?tab=settings")
    page.check("input[name='signing.signed_only']")
    page.fill("#accepted-signers", "releases")
    page.click("form[data-api*='/policy'] button[type=submit]")
    with cluster.client() as client:
        deadline = time.monotonic() + 10
        while True:
            signing = client.get("/api/v0/repositories/admin/trusted/policy").json()["signing"]
            if signing["signed_only"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert signing == {"signed_only": True, "accepted_signers": ["targets/releases"]}
    watched.clean()


def test_the_activity_page_shows_events_and_webhooks(
    cluster: LocalCluster, watched, tmp_path
) -> None:
    layout, _ = image_layout(str(tmp_path / "image"), "activity")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest",
           f"docker://{cluster.host}/admin/activity:1")  # fmt: skip
    with cluster.client() as admin:
        hook = {"scope": "admin/", "url": "http://127.0.0.1:9/hook", "allow_private": True}
        r = admin.post("/api/v0/webhooks", json={**hook, "events": ["push"]})
        assert r.status_code == 201, r.text
        hook_id = r.json()["id"]
        r = admin.post("/api/v0/accounts", json={"name": "outsider", "password": "outsider pw 1"})
        assert r.status_code == 201, r.text
    page = watched.page
    sign_in(page, cluster.url, "admin", cluster.admin_password)
    # One repository: the module's tests share a cluster (others delete tags in admin/).
    page.goto(cluster.url + "/activity?repository=admin/activity")
    row = page.locator("main tbody tr", has_text="admin/activity").first
    assert "push" in row.inner_text() and "1" in row.inner_text()
    page.select_option("#ev-type", "tag_delete")
    page.click("main form button[type=submit]")
    page.locator(".card.empty").wait_for()
    assert "type=tag_delete" in page.url
    watched.shot("activity-events")
    page.goto(cluster.url + "/activity?tab=hooks")
    card = page.locator("section.card", has_text=hook_id)
    assert "http://127.0.0.1:9/hook" in card.inner_text() and "admin/" in card.inner_text()
    watched.shot("activity-hooks")
    watched.clean()
    # Someone who may not pull the repository sees neither its events nor the webhook.
    with httpx.Client(base_url=cluster.url, follow_redirects=False) as browser:
        token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text).group(1)
        browser.post("/login", data={"csrf": token, "username": "outsider",
                                     "password": "outsider pw 1"})  # fmt: skip
        assert "admin/activity" not in browser.get("/activity").text
        assert hook_id not in browser.get("/activity?tab=hooks").text
