"""The settings page's sign-in card, in a browser: an administrator points the cluster
at a real directory (slapd over LDAPS), switches to ldap mode and syncs; a directory
user from the admin group then signs in to the web UI with the directory's password."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster import LocalCluster
from tests.directory import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, group_dn
from tests.ui.conftest import Watched, sign_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = Slapd(
        str(tmp_path_factory.mktemp("slapd")),
        people={"gordon": "gordon-directory-pw", "orca": "orca-directory-pw"},
        groups={"registry-admins": ["gordon"]},
    ).start()
    yield server
    server.stop()


def test_an_admin_sets_up_the_directory_and_its_users_sign_in(
    cluster: LocalCluster,
    slapd: Slapd,
    browser,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    watched = Watched(context.new_page(), str(tmp_path / "screenshots"))
    page = watched.page
    sign_in(page, cluster.url, "admin", cluster.admin_password)
    page.goto(cluster.url + "/settings")
    for field, value in (
        ("#ldap-url", slapd.url), ("#ldap-bind-dn", SERVICE_DN),
        ("#ldap-bind-password", SERVICE_PASSWORD), ("#ldap-base", PEOPLE),
        ("#ldap-filter", "(objectClass=inetOrgPerson)"), ("#ldap-attribute", "uid"),
        ("#ldap-admins", group_dn("registry-admins")), ("#ldap-ca", slapd.ca_pem.decode()),
    ):  # fmt: skip
        page.fill(field, value)
    page.check("input[name=keep_managed]")
    with page.expect_navigation():
        page.click("text=Save directory")
    assert page.input_value("#ldap-url") == slapd.url
    assert "(set; empty keeps it)" in page.inner_text("#ldap-form")
    page.select_option("#auth-mode", "ldap")
    with page.expect_navigation():
        page.click("text=Set mode")
    with page.expect_navigation():
        page.click("text=Sync now")
    assert "Last sync here: 2 directory users" in page.inner_text("main")
    assert page.input_value("#auth-mode") == "ldap"
    watched.shot("sign-in settings")
    watched.clean()
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    gordon = Watched(context.new_page(), str(tmp_path / "screenshots"))
    sign_in(gordon.page, cluster.url, "gordon", "gordon-directory-pw")
    assert gordon.page.goto(cluster.url + "/settings").status == 200  # the admin group's
    gordon.clean()
    context.close()
    # Leave the module's cluster as the other tests expect it.
    with cluster.client() as client:
        assert client.put("/api/v0/auth/mode", json={"mode": "managed"}).status_code == 200
