"""Tables: conversations, their turns, each side's generation, and votes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


def new_conversation_id() -> str:
    """An unguessable id for a conversation URL."""
    return uuid.uuid4().hex


class Side(StrEnum):
    """Which column a generation belongs to."""

    A = "a"
    B = "b"
    # A base model continuing another generation's first tokens (the token lens).
    PREFIX = "p"


class GenerationStatus(StrEnum):
    """Where a generation is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        """True once nothing more will be generated."""
        return self not in (GenerationStatus.PENDING, GenerationStatus.RUNNING)


class Winner(StrEnum):
    """The outcome of a vote."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Conversation(Base):
    """A comparison between two models, over one or more turns."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_conversation_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    title: Mapped[str] = mapped_column(String(200))
    system_prompt: Mapped[str | None] = mapped_column(Text)
    base_format: Mapped[str] = mapped_column(String(20))
    model_a: Mapped[str] = mapped_column(String(64))
    kind_a: Mapped[str] = mapped_column(String(10))
    model_b: Mapped[str] = mapped_column(String(64))
    kind_b: Mapped[str] = mapped_column(String(10))

    turns: Mapped[list[Turn]] = relationship(
        back_populates="conversation", order_by="Turn.number", cascade="all, delete-orphan"
    )


class Turn(Base):
    """One prompt in a conversation, answered by both models with the same settings."""

    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("conversation_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="turns")
    generations: Mapped[list[Generation]] = relationship(
        back_populates="turn", order_by="Generation.id", cascade="all, delete-orphan"
    )
    votes: Mapped[list[Vote]] = relationship(
        back_populates="turn", order_by="Vote.id", cascade="all, delete-orphan"
    )

    def current(self, side: Side) -> Generation | None:
        """The generation shown in a column (the latest one, after regenerations)."""
        return next((g for g in self.generations if g.side == side and g.is_current), None)

    def continuations_of(self, generation_id: int) -> list[Generation]:
        """Base-model continuations of a generation's prefix, oldest first."""
        return [g for g in self.generations if g.prefix_of_id == generation_id]


class Generation(Base):
    """One model's answer to one turn, with everything needed to reproduce it."""

    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    side: Mapped[str] = mapped_column(String(1))
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    model_name: Mapped[str] = mapped_column(String(64))
    model_kind: Mapped[str] = mapped_column(String(10))
    served_model: Mapped[str] = mapped_column(String(256))
    model_revision: Mapped[str | None] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(300))
    prompt_format: Mapped[str] = mapped_column(String(20))
    # Exactly what the model received: raw text for base models, messages for chat models.
    prompt_text: Mapped[str | None] = mapped_column(Text)
    messages: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=GenerationStatus.PENDING)
    text: Mapped[str] = mapped_column(Text, default="")
    finish_reason: Mapped[str | None] = mapped_column(String(40))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Token view: [{token, logprob, top: [[token, logprob], ...], token_id}] (app.lens.TokenInfo),
    # the answer's tokens without a final stop token; None when the server sent no logprobs.
    tokens: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # The exact string the model saw after its chat template (base: prompt_text), fetched on
    # demand from the server's tokenizer, and its token count.
    rendered_prompt: Mapped[str | None] = mapped_column(Text)
    rendered_prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    # A prefix continuation (side "p"): which generation's first `prefix_tokens` tokens it
    # continues; its prompt_text is the base context followed by that prefix.
    prefix_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), index=True
    )
    prefix_tokens: Mapped[int | None] = mapped_column(Integer)

    turn: Mapped[Turn] = relationship(back_populates="generations")
    token_shift: Mapped[TokenShiftAnalysis | None] = relationship(
        back_populates="generation", cascade="all, delete-orphan", uselist=False, lazy="selectin"
    )

    @property
    def finished(self) -> bool:
        """True once the generation has ended, however it ended."""
        return GenerationStatus(self.status).finished


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
    # app.lens.ShiftAnalysis.to_json(): every token's rank, logprob and the base's top token.
    analysis: Mapped[dict[str, Any]] = mapped_column(JSON)
    elapsed_ms: Mapped[float | None] = mapped_column(Float)
    requests: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    generation: Mapped[Generation] = relationship(back_populates="token_shift")


class Vote(Base):
    """A rater's verdict on one turn; a rater's later vote on the same turn overwrites it."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("turn_id", "rater"),
        CheckConstraint("winner IN ('a', 'b', 'tie', 'both_bad')", name="winner_valid"),
        CheckConstraint("score_a IS NULL OR (score_a BETWEEN 1 AND 5)", name="score_a_range"),
        CheckConstraint("score_b IS NULL OR (score_b BETWEEN 1 AND 5)", name="score_b_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    # The exact answers judged, so regenerating later never changes what a vote meant.
    generation_a_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    generation_b_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    rater: Mapped[str] = mapped_column(String(64))
    winner: Mapped[str] = mapped_column(String(10))
    score_a: Mapped[int | None] = mapped_column(Integer)
    score_b: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    turn: Mapped[Turn] = relationship(back_populates="votes")
