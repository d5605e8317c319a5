"""Tables of the token lens: token-shift analyses of chat answers, and of whole runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class TokenShiftAnalysis(Base):
    """A chat answer scored token by token under a base model (URIAL's token shift).

    One per generation: analysing again replaces it.
    """

    __tablename__ = "token_shift_analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), unique=True
    )
    base_model: Mapped[str] = mapped_column(String(64))
    base_served_model: Mapped[str] = mapped_column(String(256))
    base_format: Mapped[str] = mapped_column(String(20))
    # What preceded the answer in the scored prompt (the base format's rendering).
    context_text: Mapped[str] = mapped_column(Text)
    total_tokens: Mapped[int] = mapped_column(Integer)
    shifted_ratio: Mapped[float] = mapped_column(Float)
    marginal_ratio: Mapped[float] = mapped_column(Float)
    # app.lens.shift.ShiftAnalysis.to_json(): every token's rank, logprob and the base's top token.
    analysis: Mapped[dict[str, Any]] = mapped_column(JSON)
    elapsed_ms: Mapped[float | None] = mapped_column(Float)
    requests: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunShiftJob(Base):
    """The token-shift analysis of a whole run: what was asked and where it stands.

    The analyses themselves are ordinary TokenShiftAnalysis rows (one per answer); this row only
    remembers the choice of base model, the state of the job, and that it must resume after a
    restart.
    """

    __tablename__ = "run_shift_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)
    # The base model the user chose; None: each answer's default (its adapter's base, else the
    # run's base model).
    base_model: Mapped[str | None] = mapped_column(String(64))
    top_k: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RunShiftFailure(Base):
    """An answer of a run that its token-shift job could not analyse, and why (retryable)."""

    __tablename__ = "run_shift_failures"
    __table_args__ = (UniqueConstraint("job_id", "generation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("run_shift_jobs.id", ondelete="CASCADE"), index=True
    )
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    base_model: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
