"""Tables of the token lens: token-shift analyses of chat answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
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
