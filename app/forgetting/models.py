"""The table of answer scores: one row per scored run answer (a generation)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

MAX_DETAIL_CHARS = 300


class AnswerScore(Base):
    """Whether one answer matched its item's reference, by which version of the scorers."""

    __tablename__ = "answer_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A retried answer is a new generation, so it gets a score of its own.
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), unique=True
    )
    correct: Mapped[bool] = mapped_column(Boolean)
    scorer_version: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(String(MAX_DETAIL_CHARS), default="")
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
