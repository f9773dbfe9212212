"""The DTR laboratory entirely through the web UI: the admin creates the users, the
organization, its teams and members, and the repositories granted to teams; skopeo,
as each user, then pushes and pulls as the laboratory expects; ahab signs in and sees
madrid and not barca; the admin deletes tag lona by typing DELETE and schedules
garbage collection in Settings."""

from __future__ import annotations

import pytest

from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout
from tests.ui.conftest import sign_in

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
USERS = [("gordon", "admin"), ("orca", "read-write"), ("moby", "read-only"), ("ahab", "none")]
TEAMS = [("core", ["gordon", "orca"]), ("frontend", ["gordon", "moby", "ahab"])]
REPOSITORIES = [("barca", "core", "read-only"), ("madrid", "frontend", "read-write")]


def dialog_submit(page, opener: str, dialog: str, fields: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    page.click(opener)
    for selector, value in fields.items():
        if page.locator(selector).evaluate("e => e.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    with page.expect_navigation():
        page.click(f"{dialog} button[type=submit]")


def push(cluster: LocalCluster, tmp_path, user: str, repo: str, tag: str) -> None:
    layout, _ = image_layout(str(tmp_path / f"layout-{repo}-{tag}"), f"lab-{repo}-{tag}", layers=1)
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"{user}:{PASSWORD}",
        f"oci:{layout}:latest",
        f"docker://{cluster.host}/engineering/{repo}:{tag}",
    )


def pull(cluster: LocalCluster, tmp_path, user: str, repo: str, tag: str) -> dict:
    out = tmp_path / f"pulled-{user}-{repo}-{tag}"
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        f"{user}:{PASSWORD}",
        f"docker://{cluster.host}/engineering/{repo}:{tag}",
        f"dir:{out}",
    )
    return dir_digests(str(out))


def test_the_laboratory_through_the_ui(cluster: LocalCluster, watched, browser, tmp_path) -> None:
    page = watched.page
    sign_in(page, cluster.url, "admin", cluster.admin_password)
    page.goto(cluster.url + "/users")
    for name, role in USERS:
        dialog_submit(
            page,
            "text=New user",
            "#new-user",
            {"#user-name": name, "#user-password": PASSWORD, "#user-role": role},
        )
    watched.shot("users")
    page.goto(cluster.url + "/orgs")
    dialog_submit(page, "text=New organization", "#new-org", {"#org-name": "engineering"})
    page.click("a[href='/orgs/engineering']")
    for team, _ in TEAMS:
        dialog_submit(page, "text=New team", "#new-team", {"#team-name": team})
    page.click("text=Repositories >> nth=1")  # the organization's tab, not the side bar
    for repo, _, _ in REPOSITORIES:
        dialog_submit(
            page,
            "text=New repository",
            "#new-org-repo",
            {"#org-repo-name": repo, "#org-repo-visibility": "private"},
        )
    for team, members in TEAMS:
        page.goto(f"{cluster.url}/orgs/engineering/teams/{team}")
        for member in members:
            page.select_option("#member", member)
            with page.expect_navigation():
                page.click("#add-member-form button[type=submit]")
        for repo, granted, access in REPOSITORIES:
            if granted == team:
                page.select_option("#grant-repo", repo)
                page.select_option("#grant-access", access)
                with page.expect_navigation():
                    page.click("#grant-form button[type=submit]")
        watched.shot(f"team-{team}")
        text = page.inner_text("main")
        assert all(m in text for m in members)
    page.goto(cluster.url + "/orgs/engineering")
    watched.shot("organization")
    watched.clean()

    # What the laboratory expects of each user, with a real client.
    push(cluster, tmp_path, "orca", "barca", "lona")  # core is read-only, orca read-write on all
    push(cluster, tmp_path, "orca", "barca", "keep")
    assert "manifest.json" in pull(cluster, tmp_path, "moby", "barca", "lona")
    with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
        push(cluster, tmp_path, "moby", "barca", "2")
    push(cluster, tmp_path, "ahab", "madrid", "1")  # frontend: read-write
    with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
        push(cluster, tmp_path, "ahab", "barca", "3")

    # ahab sees madrid, not barca.
    ahab_context = browser.new_context(viewport={"width": 1280, "height": 800})
    ahab = ahab_context.new_page()
    sign_in(ahab, cluster.url, "ahab", PASSWORD)
    ahab.goto(cluster.url + "/repositories")
    listed = ahab.inner_text("#repository-list")
    assert "engineering/madrid" in listed and "engineering/barca" not in listed
    assert ahab.goto(cluster.url + "/repositories/engineering/barca").status == 404
    assert ahab.goto(cluster.url + "/settings").status == 403
    ahab_context.close()

    # The admin soft-deletes lona, then schedules garbage collection.
    page.goto(cluster.url + "/repositories/engineering/barca")
    page.click("button[aria-label='Delete tag lona']")
    page.fill("#delete-confirm", "DELETE")
    with page.expect_navigation():
        page.click("#delete-tag button[type=submit]")
    assert "lona" not in page.inner_text("tbody") and "keep" in page.inner_text("tbody")
    page.goto(cluster.url + "/settings")
    page.fill("#gc-cron", "0 0 0 * * *")
    with page.expect_navigation():
        page.click("text=Save schedule")
    assert "Next run:" in page.inner_text("main")
    watched.clean()
