"""Fixtures for browser tests: a real headless Debian Chromium driven by Playwright (sync API).

The browser is the system Chromium at ``/usr/bin/chromium`` (installed by
``scripts/install-browser.sh``), never a Playwright-downloaded build. When it is missing the
``browser`` fixture FAILS (it does not skip), so CI can never pass by silently skipping the
browser tests.

On a failing test that used ``page``, a full-page screenshot is written to
``test-artifacts/<test name>.png`` at the repository root.

Scope: Playwright and the browser are started once and shared by every test in this package
(``scope="package"``, i.e. "session" for the browser tests), and are stopped when pytest leaves
the package. They must not outlive it: while a *sync* Playwright is alive it leaves its asyncio
loop marked as running in the main thread, and every later pytest-asyncio test then fails with
"Runner.run() cannot be called from a running event loop". For the same reason, tests using
these fixtures must be plain ``def`` tests, not ``async def``.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from app.config import ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.browser.helpers import ANSWER_WORDS, TOKEN_DELAY, Live
from tests.support import ThreadedServer

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# Fail fast instead of Playwright's 30 s default; tests may still override per call.
DEFAULT_TIMEOUT_MS = 10_000
ARTIFACTS_DIR_NAME = "test-artifacts"

_PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_PHASE_REPORTS, {})[report.when] = report
    return report


def _test_failed(item: pytest.Item) -> bool:
    reports = item.stash.get(_PHASE_REPORTS, {})
    return any(rep.failed for when, rep in reports.items() if when in ("setup", "call"))


def _artifact_path(config: pytest.Config, test_name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_") or "test"
    return config.rootpath / ARTIFACTS_DIR_NAME / f"{safe}.png"


@pytest.fixture(scope="package")
def playwright_instance() -> Iterator[Playwright]:
    pw = sync_playwright().start()
    try:
        yield pw
    finally:
        pw.stop()


@pytest.fixture(scope="package")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not CHROMIUM_PATH.exists():
        pytest.fail(
            f"{CHROMIUM_PATH} not found: browser tests need Debian's Chromium. "
            "Run scripts/install-browser.sh (as root or with sudo) and re-run the tests.",
            pytrace=False,
        )
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM_PATH),
        headless=True,
        args=CHROMIUM_ARGS,
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        page = context.new_page()
        yield page
        if _test_failed(request.node):
            path = _artifact_path(request.config, request.node.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(path=str(path), full_page=True)
            except Exception as exc:  # the page may have crashed; never mask the real failure
                print(f"could not save failure screenshot {path}: {exc}")
            else:
                print(f"failure screenshot saved to {path}")
    finally:
        context.close()


@pytest.fixture
def live(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> Iterator[Live]:
    """A fresh app (own database) on a real port, with fakes slow enough to watch streaming."""
    for fake in (base_server, chat_server):
        fake.config.token_delay = TOKEN_DELAY
        fake.config.answer_words = ANSWER_WORDS
    with (
        ThreadedServer(create_app(settings, models)) as server,
        httpx.Client(base_url=server.url, timeout=10) as api,
    ):
        yield Live(server.url, api, base_server, chat_server)


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page logs (CSP violations, failed loads, uncaught exceptions), as they occur."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    return errors
