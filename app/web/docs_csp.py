"""A Content-Security-Policy for FastAPI's /docs and /redoc that allows exactly what they load.

Swagger UI and ReDoc come from a CDN and /docs starts Swagger UI with an inline script, so the
pages' strict policy would blank them. Instead of opening `script-src` to any inline script,
the policy is derived from the page itself: each external script and stylesheet by its exact
URL, each inline script by its SHA-256 hash. Styles keep 'unsafe-inline' (both UIs set inline
styles at run time); images may also be data: URLs (Swagger UI's icons); ReDoc's search runs
in a blob: worker and Google Fonts serve its fonts.
"""

from __future__ import annotations

import base64
import hashlib
import re

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
_LINK = re.compile(r"<link\b([^>]*)>", re.I)
_ATTRIBUTE = re.compile(r'\b([a-z-]+)\s*=\s*"([^"]*)"', re.I)
# A URL that can stand in a CSP source list: https, no spaces, quotes, commas or semicolons.
_SOURCE_URL = re.compile(r"^https://[^\s'\",;]+$")


def _attributes(text: str) -> dict[str, str]:
    return {name.lower(): value for name, value in _ATTRIBUTE.findall(text)}


def _source(url: str) -> str | None:
    """The URL as a CSP source expression (query and fragment dropped), or None if unusable."""
    url = url.split("#", 1)[0].split("?", 1)[0]
    return url if _SOURCE_URL.match(url) else None


def _hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def docs_csp(page: str) -> str:
    """The policy for one docs page's HTML."""
    scripts: list[str] = []
    for attributes, body in _SCRIPT.findall(page):
        src = _attributes(attributes).get("src")
        if src is not None:
            if (source := _source(src)) is not None:
                scripts.append(source)
        elif body.strip():
            scripts.append(_hash(body))
    styles: list[str] = []
    images: list[str] = []
    for link in _LINK.findall(page):
        attributes = _attributes(link)
        rel, source = attributes.get("rel", "").lower(), _source(attributes.get("href", ""))
        if source is None:
            continue
        if "stylesheet" in rel:
            styles.append(source)
        elif "icon" in rel:
            images.append(source)
    google_fonts = any(s.startswith("https://fonts.googleapis.com/") for s in styles)
    fonts = ["https://fonts.gstatic.com"] if google_fonts else []
    directives = [
        "default-src 'none'",
        "script-src " + " ".join(dict.fromkeys(scripts) or ["'none'"]),
        "style-src " + " ".join(["'unsafe-inline'", *dict.fromkeys(styles)]),
        "img-src " + " ".join(["'self'", "data:", *dict.fromkeys(images)]),
        "font-src " + " ".join(["'self'", "data:", *fonts]),
        "connect-src 'self'",
        "worker-src blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    return "; ".join(directives)
