"""The web UI's browser tests: Playwright driving Debian's chromium (Playwright cannot
download its own browsers here), against a real replica. Every page a test opens is
checked for console errors and failed requests, and screenshotted into the test's
output folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.cluster import LocalCluster

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    data = tmp_path_factory.mktemp("ui") / "data"
    running = LocalCluster(str(data), env={"QREG_GC_GRACE_S": "0"}).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "chromium is not installed; the test command installs it"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Watched:
    """A page whose console errors and failed requests are collected."""

    def __init__(self, page, shots: str) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.shots = shots
        self.problems: list[str] = []
        page.on(
            "console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}")
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))

    def shot(self, name: str) -> None:
        os.makedirs(self.shots, exist_ok=True)
        self.page.screenshot(path=os.path.join(self.shots, f"{name}.png"), full_page=True)

    def clean(self) -> None:
        assert not self.problems, self.problems


@pytest.fixture
def watched(browser, tmp_path, request):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = Watched(context.new_page(), str(tmp_path / "screenshots"))
    yield page
    context.close()


def sign_in(page, url: str, user: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
