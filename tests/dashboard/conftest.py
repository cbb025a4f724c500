"""Playwright fixtures for the dashboard tests: Debian's chromium, one page per test, screenshots."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect, sync_playwright

from tests.conftest import ARTIFACTS, make_key

SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Set to a folder (e.g. docs) to also write the README's screenshots there: off by default, so a test
# run never changes tracked files.
DOCS_SCREENSHOTS = os.environ.get("WGAN_DOCS_SCREENSHOTS")

# Playwright's assertions retry until this many milliseconds have passed.
expect.set_options(timeout=20_000)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # Kept on the item so the page fixture can screenshot a failure before closing the page.
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """What the browser complained about: uncaught errors and refused content (CSP)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture
def dashboard_key(database: str) -> str:
    """A fresh owner per test, so each test's list holds only its own jobs."""
    return make_key()


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Browser, api: str) -> Iterator[Page]:
    context = browser.new_context(base_url=api, viewport=DESKTOP)
    page = context.new_page()
    problems = PageProblems()
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    yield page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        shoot(page, f"failed-{request.node.name}")
    context.close()
    assert not problems.errors, problems.errors


def shoot(page: Page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def shoot_for_docs(page: Page, name: str) -> Path | None:
    """The whole page, reduced to a 256-colour palette: small enough to keep in git (< 300 KB)."""
    if not DOCS_SCREENSHOTS:
        return None
    path = Path(DOCS_SCREENSHOTS) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256)
    small.save(path, optimize=True)
    return path


def sign_in(page: Page, key: str, hash_route: str = "#/jobs") -> None:
    page.goto(f"/{hash_route}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
