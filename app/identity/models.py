"""Tables: accounts, invite links and API tokens (secrets stored only as hashes)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

USERNAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class Role(StrEnum):
    """What an account may do: raters prompt and rate; admins also manage everything."""

    RATER = "rater"
    ADMIN = "admin"


class Account(Base):
    """One person who signs in; the username is the rater name on their judgements."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("role IN ('rater', 'admin')", name="role_valid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # Argon2id, in the PHC string form (salt and parameters included).
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(10), default=Role.RATER)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Signed session cookies carry it: bumping it (sign-out, disable) ends every session.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Wrong passwords in a row, and the last one's time: sign-in pauses after too many.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def is_admin(self) -> bool:
        """Whether the account has the admin role."""
        return self.role == Role.ADMIN


class Invite(Base):
    """A single-use, expiring link that lets its holder choose a username and password."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(10), default=Role.RATER)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))


class ApiToken(Base):
    """A per-account token for `Authorization: Bearer`; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
