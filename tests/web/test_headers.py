"""Security headers on every response, the API docs included (with a policy of their own)."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from app.web.docs_csp import docs_csp

COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def inline_hashes(page: str) -> set[str]:
    """The CSP hash of each inline script in a page."""
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
        if "src=" not in attrs and body.strip()
    }


@pytest.mark.parametrize(
    "path", ["/", "/history", "/api/v1/models", "/openapi.json", "/docs", "/redoc",
             "/docs/oauth2-redirect", "/healthz", "/nowhere"],
)  # fmt: skip
async def test_every_response_has_the_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (path, name)
    policy = directives(response.headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"], path
    assert policy["base-uri"] == ["'none'"], path
    assert "'unsafe-inline'" not in policy["script-src"], path
    assert "'unsafe-eval'" not in policy["script-src"], path


async def test_swagger_ui_may_load_exactly_its_cdn_files_and_its_own_inline_script(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/docs")
    page = response.text
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    scripts = set(policy["script-src"])
    bundle = re.search(r'<script src="([^"]+)"', page)
    assert bundle and bundle.group(1).startswith("https://")
    hashes = inline_hashes(page)
    assert hashes, "Swagger UI starts with an inline script"
    assert scripts == {bundle.group(1), *hashes}
    css = re.search(r'<link type="text/css" rel="stylesheet" href="([^"]+)"', page)
    assert css and css.group(1) in policy["style-src"]
    assert policy["connect-src"] == ["'self'"]


async def test_redoc_may_load_its_bundle_fonts_and_worker(client: httpx.AsyncClient) -> None:
    response = await client.get("/redoc")
    policy = directives(response.headers["content-security-policy"])
    assert len(policy["script-src"]) == 1 and policy["script-src"][0].startswith("https://")
    assert "https://fonts.googleapis.com/css" in policy["style-src"]
    assert "https://fonts.gstatic.com" in policy["font-src"]
    assert policy["worker-src"] == ["blob:"]


def test_the_docs_policy_drops_queries_and_refuses_odd_urls() -> None:
    page = (
        '<link rel="stylesheet" href="https://fonts.example/css?family=A:300,400|B">'
        '<script src="http://insecure.example/x.js"></script>'
        '<script src="https://cdn.example/a.js;evil"></script>'
        "<script>go()</script>"
    )
    policy = directives(docs_csp(page))
    assert policy["style-src"] == ["'unsafe-inline'", "https://fonts.example/css"]
    assert policy["script-src"] == list(inline_hashes(page))
