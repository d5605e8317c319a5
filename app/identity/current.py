"""Who is asking: a session cookie (pages and API) or an API token (API only), as an Identity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import HTTPException, Request, status
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.identity.models import Account, ApiToken, Role
from app.identity.secrets import token_digest
from app.identity.sessions import SESSION_COOKIE, SessionSigner

MAX_TOKEN_CHARS = 200
# A token's last use is written at most this often (not on every request).
LAST_USED_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class Identity:
    """A signed-in account as a request sees it (a plain value, no database row)."""

    id: int
    username: str
    role: str
    via_token: bool = False

    @property
    def is_admin(self) -> bool:
        """Whether the account has the admin role."""
        return self.role == Role.ADMIN


def current_identity(request: Request) -> Identity | None:
    """The request's account, None when signed out or in local mode (set by accounts.guard)."""
    identity = getattr(request.state, "account", None)
    return identity if isinstance(identity, Identity) else None


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header on an API request, or None without one."""
    header = request.headers.get("authorization")
    if header is None or not request.url.path.startswith("/api/"):
        return None  # pages are cookie-only (and so CSRF-checked)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise unauthorized("send `Authorization: Bearer <token>` with an API token")
    return token


def unauthorized(message: str) -> HTTPException:
    """A 401 that tells API clients how to authenticate."""
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


async def identify(
    request: Request, session: AsyncSession, signer: SessionSigner
) -> Identity | None:
    """The account behind the request's API token or session cookie (None: anonymous).

    A wrong or revoked token is a 401 rather than anonymous, so scripts learn why.
    """
    token = bearer_token(request)
    if token is not None:
        identity = await _by_token(session, token)
        if identity is None:
            raise unauthorized("the API token is not valid (wrong, revoked or account disabled)")
        return identity
    claim = signer.claim(request.cookies.get(SESSION_COOKIE))
    if claim is None:
        return None
    account = await session.get(Account, claim.account_id)
    if account is None or account.disabled or account.session_epoch != claim.epoch:
        return None
    return Identity(account.id, account.username, account.role)


async def _by_token(session: AsyncSession, token: str) -> Identity | None:
    row = (
        await session.execute(
            select(ApiToken.id, ApiToken.last_used_at, Account)
            .join(Account, Account.id == ApiToken.account_id)
            .where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None))
        )
    ).one_or_none()
    if row is None or row.Account.disabled:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        stamp = update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
        await session.execute(stamp)
        await session.commit()
    account = row.Account
    return Identity(account.id, account.username, account.role, via_token=True)
