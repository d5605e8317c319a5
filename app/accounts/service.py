"""Account use cases: create, sign in, invite, API tokens, and the admin's changes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound, PlaygroundError
from app.identity.models import USERNAME_PATTERN, Account, ApiToken, Invite, Role
from app.identity.secrets import (
    hash_password,
    new_token,
    password_problem,
    token_digest,
    verify_password,
)

_USERNAME = re.compile(USERNAME_PATTERN)
MAX_TOKENS_PER_ACCOUNT = 20
FAILURES_BEFORE_PAUSE = 5
LOGIN_PAUSE = timedelta(minutes=5)


class TooManyAttempts(PlaygroundError):
    """Sign-in paused after repeated wrong passwords (429 with Retry-After)."""

    status_code = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass
class AccountService:
    """Account changes in the caller's session (the request commits)."""

    session: AsyncSession

    async def create(self, username: str, password: str, role: Role) -> Account:
        """A new account with a hashed password; a taken or bad name or weak password is 4xx."""
        if not _USERNAME.match(username):
            raise InvalidInput("username: 1-64 letters, digits, '.', '_' or '-'")
        if problem := password_problem(password):
            raise InvalidInput(problem)
        taken = await self.session.scalar(
            select(Account.id).where(func.lower(Account.username) == username.lower())
        )
        if taken is not None:
            raise Conflict(f"the username {username!r} is taken")
        account = Account(username=username, password_hash=hash_password(password), role=role)
        try:
            # A savepoint: the same name taken by a sign-up at the same moment is a 409, and
            # the request's transaction stays usable.
            async with self.session.begin_nested():
                self.session.add(account)
        except IntegrityError as exc:
            raise Conflict(f"the username {username!r} is taken") from exc
        return account

    async def sign_in(self, username: str, password: str) -> Account | None:
        """The account these credentials open, or None (same answer for any wrong part).

        After FAILURES_BEFORE_PAUSE wrong passwords in a row an account's sign-in pauses for
        LOGIN_PAUSE after the latest one (429, even with the right password), which keeps
        guessing slow; counted in the database, so it holds across processes.
        """
        account = await self.session.scalar(
            select(Account).where(Account.username == username[:64])
        )
        if account is not None:
            self._check_pause(account)
        ok = verify_password(password[:256], account.password_hash if account else None)
        if account is None:
            return None
        if not ok:
            # In SQL, so that simultaneous wrong guesses all count.
            await self.session.execute(
                update(Account)
                .where(Account.id == account.id)
                .values(failed_logins=Account.failed_logins + 1, last_failed_at=utcnow())
            )
            return None
        account.failed_logins = 0
        return None if account.disabled else account

    def _check_pause(self, account: Account) -> None:
        if account.failed_logins < FAILURES_BEFORE_PAUSE or account.last_failed_at is None:
            return
        wait = (account.last_failed_at + LOGIN_PAUSE - utcnow()).total_seconds()
        if wait > 0:
            raise TooManyAttempts(
                f"too many wrong passwords for this account: try again in {math.ceil(wait)} s",
                wait,
            )

    async def sign_out(self, account_id: int) -> None:
        """End every session of the account (its cookies stop matching)."""
        await self.session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(session_epoch=Account.session_epoch + 1)
        )

    async def all(self) -> list[Account]:
        """Every account, by name."""
        return list(await self.session.scalars(select(Account).order_by(Account.username)))

    async def get(self, account_id: int) -> Account:
        """One account, or 404."""
        account = await self.session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no such account: {account_id}")
        return account

    async def invite(self, created_by: int, role: Role, hours: int) -> str:
        """A single-use invite; returns the token for the link (only its hash is stored)."""
        token = new_token()
        expires = utcnow() + timedelta(hours=hours)
        self.session.add(
            Invite(token_hash=token_digest(token), role=role, created_by_id=created_by,
                   expires_at=expires)
        )  # fmt: skip
        await self.session.flush()
        return token

    async def open_invite(self, token: str) -> Invite:
        """The unused, unexpired invite behind a link, or 404 (one answer for every failure)."""
        invite = await self.session.scalar(
            select(Invite).where(Invite.token_hash == token_digest(token))
        )
        if invite is None or invite.used_at is not None or invite.expires_at <= utcnow():
            raise NotFound("this invite link is not valid: it was used, expired or never made")
        return invite

    async def accept_invite(self, token: str, username: str, password: str) -> Account:
        """Use an invite once: create the account and mark the invite used (atomically)."""
        invite = await self.open_invite(token)
        account = await self.create(username, password, Role(invite.role))
        # The conditional update makes two simultaneous uses of one link fail but one.
        used = await self.session.execute(
            update(Invite)
            .where(Invite.id == invite.id, Invite.used_at.is_(None))
            .values(used_at=utcnow(), account_id=account.id)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("this invite link is not valid: it was used, expired or never made")
        return account

    async def set_role(self, account_id: int, role: Role, acting: int) -> None:
        """Change a role; an admin cannot demote themself (someone must stay admin)."""
        account = await self.get(account_id)
        if account.id == acting and role is not Role.ADMIN:
            raise Conflict("you cannot take your own admin role: ask another admin")
        account.role = role

    async def set_disabled(self, account_id: int, disabled: bool, acting: int) -> None:
        """Disable (sessions and tokens stop working at once) or enable an account."""
        account = await self.get(account_id)
        if account.id == acting and disabled:
            raise Conflict("you cannot disable your own account")
        account.disabled = disabled
        account.session_epoch += 1

    async def tokens(self, account_id: int) -> list[ApiToken]:
        """An account's tokens, newest first."""
        query = select(ApiToken).where(ApiToken.account_id == account_id)
        return list(await self.session.scalars(query.order_by(ApiToken.id.desc())))

    async def create_token(self, account_id: int, name: str) -> str:
        """A new API token; returned once, stored as its SHA-256."""
        live = await self.session.scalar(
            select(func.count(ApiToken.id)).where(
                ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None)
            )
        )
        if (live or 0) >= MAX_TOKENS_PER_ACCOUNT:
            raise Conflict(f"revoke a token first: at most {MAX_TOKENS_PER_ACCOUNT} per account")
        token = new_token()
        self.session.add(ApiToken(account_id=account_id, name=name, token_hash=token_digest(token)))
        await self.session.flush()
        return token

    async def revoke_tokens(self, account_id: int, token_id: int | None = None) -> int:
        """Revoke one of the account's tokens (404 if not theirs) or all of them."""
        query = update(ApiToken).where(
            ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None)
        )
        if token_id is not None:
            query = query.where(ApiToken.id == token_id)
        result = await self.session.execute(query.values(revoked_at=utcnow()))
        count = int(result.rowcount)  # type: ignore[attr-defined]
        if token_id is not None and count == 0:
            raise NotFound(f"no such live token of yours: {token_id}")
        return count
