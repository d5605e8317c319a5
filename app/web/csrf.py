"""CSRF protection for the browser pages: a signed double-submit token bound to a cookie."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import HTTPException, Request, Response

CSRF_COOKIE = "playground_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class CsrfSigner:
    """Derives the page token from the browser's random cookie with a server secret."""

    def __init__(self, secret: str, secure_cookies: bool) -> None:
        self._key = secret.encode()
        self._secure = secure_cookies

    def token_for(self, cookie_value: str) -> str:
        """The token pages embed for this browser."""
        return hmac.new(self._key, cookie_value.encode(), hashlib.sha256).hexdigest()

    def browser_cookie(self, request: Request) -> tuple[str, bool]:
        """This browser's random cookie value, and whether it is new (and must be set)."""
        value = request.cookies.get(CSRF_COOKIE)
        if value and len(value) <= 128:
            return value, False
        return secrets.token_urlsafe(32), True

    def set_cookie(self, response: Response, value: str) -> None:
        """Give the browser its cookie (not readable by scripts; never sent cross-site)."""
        response.set_cookie(
            CSRF_COOKIE, value, httponly=True, samesite="strict", secure=self._secure
        )

    async def verify(self, request: Request) -> None:
        """Reject a state-changing browser request whose token does not match its cookie."""
        cookie = request.cookies.get(CSRF_COOKIE)
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            field = form.get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
        if not cookie or not sent or not self._matches(sent, cookie):
            raise HTTPException(
                status_code=403,
                detail="The form expired or came from another site: reload the page and try again.",
            )

    def _matches(self, sent: str, cookie: str) -> bool:
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        return hmac.compare_digest(sent.encode("utf-8", "replace"), self.token_for(cookie).encode())
