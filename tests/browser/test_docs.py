"""The API docs in headless Chromium: Swagger UI's own files and inline start-up script run
under the docs page's Content-Security-Policy, and nothing else does.

The CDN is stood in for by routes (no network in tests); the policy is what is checked.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.helpers import Live

pytestmark = pytest.mark.browser

# Stands in for swagger-ui-bundle.js: draws the spec URL it was started with.
FAKE_BUNDLE = """
window.SwaggerUIBundle = function (options) {
  document.getElementById('swagger-ui').textContent = 'started with ' + options.url;
};
SwaggerUIBundle.presets = {apis: {}};
SwaggerUIBundle.SwaggerUIStandalonePreset = {};
"""
INJECTED = """
const s = document.createElement('script');
s.src = 'https://cdn.jsdelivr.net/npm/other-package@1/evil.js';
document.head.appendChild(s);
"""


def serve_cdn(route: Route) -> None:
    url = route.request.url
    if url.endswith("/evil.js"):
        route.fulfill(status=200, content_type="application/javascript", body="window.__evil = 1")
    elif url.endswith(".js"):
        route.fulfill(status=200, content_type="application/javascript", body=FAKE_BUNDLE)
    elif url.endswith(".css"):
        route.fulfill(status=200, content_type="text/css", body="body { margin: 0 }")
    else:
        route.fulfill(status=204)


def test_swagger_ui_starts_under_the_docs_policy(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    page.route("https://cdn.jsdelivr.net/**", serve_cdn)
    page.route("https://fastapi.tiangolo.com/**", serve_cdn)
    page.goto(f"{live.url}/docs")
    expect(page.locator("#swagger-ui")).to_have_text("started with /openapi.json")
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
    # Another script from the same CDN is refused: the policy names exact files.
    page.evaluate(INJECTED)
    for _ in range(60):
        if any("Content Security Policy" in e for e in console_errors):
            break
        page.wait_for_timeout(50)
    assert any("Content Security Policy" in e for e in console_errors), console_errors
    assert page.evaluate("window.__evil") is None
