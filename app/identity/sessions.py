"""Sign-in sessions in signed cookies: the account id and its session epoch, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "playground_session"
MAX_COOKIE_CHARS = 512


@dataclass(frozen=True)
class SessionClaim:
    """Who a valid cookie says the browser is."""

    account_id: int
    epoch: int


class SessionSigner:
    """Signs and checks session cookies with the app's secret (a salt of its own)."""

    def __init__(self, secret: str, max_age_seconds: int, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="playground-session")
        self._max_age = max_age_seconds
        self._secure = secure

    def claim(self, value: str | None) -> SessionClaim | None:
        """The claim of an untampered, unexpired cookie; None for anything else."""
        if not value or len(value) > MAX_COOKIE_CHARS:
            return None
        try:
            data = self._serializer.loads(value, max_age=self._max_age)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, list) or len(data) != 2:
            return None
        account_id, epoch = data
        if type(account_id) is not int or type(epoch) is not int:
            return None
        return SessionClaim(account_id, epoch)

    def set_cookie(self, response: Response, claim: SessionClaim) -> None:
        """Sign the browser in: HttpOnly, SameSite=Lax, HTTPS-only when secure."""
        value = self._serializer.dumps([claim.account_id, claim.epoch])
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self._max_age,
            httponly=True,
            samesite="lax",
            secure=self._secure,
        )

    def clear_cookie(self, response: Response) -> None:
        """Sign the browser out."""
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=self._secure)
