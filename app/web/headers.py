"""Security headers on every response: a strict Content-Security-Policy for the pages.

FastAPI's /docs and /redoc load Swagger UI / ReDoc from a CDN: they get a policy of their own
that allows exactly the scripts and styles each page names (app/web/docs_csp.py), and the same
framing, nosniff and referrer headers as everything else.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.docs_csp import docs_csp

# Scripts, styles and connections only from this origin: even if untrusted text slipped through
# escaping, an injected inline script or handler would not run.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
# A docs page's HTML is read whole to derive its policy; it is a few kilobytes.
MAX_DOCS_PAGE_BYTES = 1_000_000


def _common(headers: MutableHeaders) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")


class SecurityHeadersMiddleware:
    """Add CSP, nosniff, referrer and framing headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap send() to add headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in DOCS_PATHS:
            await self._docs(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                _common(headers)
                headers.setdefault("Content-Security-Policy", PAGE_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold a docs page until its body is complete, then send it with its own policy."""
        start: Message | None = None
        sent_start = False
        body = bytearray()

        async def send_docs(message: Message) -> None:
            nonlocal start, sent_start
            if message["type"] == "http.response.start":
                start = message
                return
            if sent_start or start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if more and len(body) <= MAX_DOCS_PAGE_BYTES:
                return
            headers = MutableHeaders(scope=start)
            _common(headers)
            # A page too large to read whole (none of FastAPI's) gets the strict policy.
            policy = PAGE_CSP if more else docs_csp(body.decode("utf-8", "replace"))
            headers.setdefault("Content-Security-Policy", policy)
            sent_start = True
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body), "more_body": more})

        await self.app(scope, receive, send_docs)
