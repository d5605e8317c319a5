"""Tables of rating tasks (a run opened for rating) and their assignments (leases)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

MIN_OVERLAP, MAX_OVERLAP = 1, 10
MAX_GUIDELINES = 5000
# How long an item stays reserved for the rater who got it.
LEASE_SECONDS = 600


class AssignmentState(StrEnum):
    """Where a rater is with an item they were given."""

    OPEN = "open"
    DONE = "done"
    SKIPPED = "skipped"


class RatingTask(Base):
    """A run opened as a rating task: how many judgements each item wants, and how to show it."""

    __tablename__ = "rating_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    reveal_names: Mapped[bool] = mapped_column(Boolean, default=False)
    blind: Mapped[bool] = mapped_column(Boolean, default=True)
    random_positions: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Assignment(Base):
    """One item given to one rater: a lease until expires_at, then done or skipped."""

    __tablename__ = "assignments"
    # A rater gets an item at most once: two racing requests cannot both insert it.
    __table_args__ = (UniqueConstraint("task_id", "run_item_id", "rater"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(
        ForeignKey("rating_tasks.id", ondelete="CASCADE"), index=True
    )
    run_item_id: Mapped[int] = mapped_column(
        ForeignKey("run_items.id", ondelete="CASCADE"), index=True
    )
    rater: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), default=AssignmentState.OPEN)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
