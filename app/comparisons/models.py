"""Tables: conversations, their participants and turns, and judgements of the answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.generation.records import Generation
from app.identity.models import Account  # noqa: F401  (owner_id's table, in the metadata)


def new_conversation_id() -> str:
    """An unguessable id for a conversation URL."""
    return uuid.uuid4().hex


SLOTS = ("a", "b", "c", "d")
MIN_MODELS, MAX_MODELS = 2, 4


class Slot(StrEnum):
    """Which column a generation belongs to (a to d), or "p" for a prefix continuation."""

    A = "a"
    B = "b"
    C = "c"
    D = "d"
    # A base model continuing another generation's first tokens (the token lens).
    PREFIX = "p"


class Winner(StrEnum):
    """The outcome of a two-answer vote, and of each pair a judgement is exported as."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Conversation(Base):
    """A comparison between 2 to 4 models (its participants), over one or more turns."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_conversation_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    title: Mapped[str] = mapped_column(String(200))
    system_prompt: Mapped[str | None] = mapped_column(Text)
    base_format: Mapped[str] = mapped_column(String(20))
    # Blind arena: names, kinds and served names stay hidden until a rater has judged.
    blind: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A batch run's item opened for rating (app.annotation): at most one conversation each.
    run_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("run_items.id", ondelete="CASCADE"), unique=True
    )
    # Team mode: the account that started it (only it, or an admin, may follow up, stop or
    # regenerate); None in local mode and for conversations made before accounts.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )

    participants: Mapped[list[Participant]] = relationship(
        order_by="Participant.position", cascade="all, delete-orphan", lazy="selectin"
    )
    turns: Mapped[list[Turn]] = relationship(
        back_populates="conversation", order_by="Turn.number", cascade="all, delete-orphan"
    )

    def participant(self, slot: str) -> Participant | None:
        """The model in a slot."""
        return next((p for p in self.participants if p.slot == slot), None)

    def first_model_of_kind(self, kind: str) -> str | None:
        """The first participant of a kind ("base" or "chat"), e.g. the lens's default base."""
        return next((p.model_name for p in self.participants if p.model_kind == kind), None)

    @property
    def slots(self) -> list[str]:
        """The slots in column (display) order."""
        return [p.slot for p in self.participants]


class Participant(Base):
    """One model in a conversation: its slot (a-d, its identity in votes and exports) and the
    position its column is shown at (random in blind mode)."""

    __tablename__ = "participants"
    __table_args__ = (
        UniqueConstraint("conversation_id", "slot"),
        CheckConstraint("slot IN ('a', 'b', 'c', 'd')", name="slot_valid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    slot: Mapped[str] = mapped_column(String(1))
    position: Mapped[int] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(64))
    model_kind: Mapped[str] = mapped_column(String(10))


class Turn(Base):
    """One prompt in a conversation, answered by every model with the same settings."""

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
        order_by="Generation.id", cascade="all, delete-orphan"
    )
    judgements: Mapped[list[Judgement]] = relationship(
        back_populates="turn", order_by="Judgement.id", cascade="all, delete-orphan"
    )

    def current(self, slot: str) -> Generation | None:
        """The generation shown in a column (the latest one, after regenerations)."""
        return next((g for g in self.generations if g.slot == slot and g.is_current), None)

    def continuations_of(self, generation_id: int) -> list[Generation]:
        """Base-model continuations of a generation's prefix, oldest first."""
        return [g for g in self.generations if g.prefix_of_id == generation_id]


class Judgement(Base):
    """A rater's verdict on one turn's answers: a ranking (ties allowed) or "all bad", optional
    scores and a comment. A rater's later judgement of the same turn overwrites it."""

    __tablename__ = "judgements"
    __table_args__ = (UniqueConstraint("turn_id", "rater"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    rater: Mapped[str] = mapped_column(String(64))
    all_bad: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str | None] = mapped_column(Text)
    # True when the rater judged without knowing which model wrote which answer.
    blind: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    turn: Mapped[Turn] = relationship(back_populates="judgements")
    entries: Mapped[list[JudgementEntry]] = relationship(
        order_by="JudgementEntry.slot", cascade="all, delete-orphan", lazy="selectin"
    )

    def entry(self, slot: str) -> JudgementEntry | None:
        """What the judgement says of one slot's answer."""
        return next((e for e in self.entries if e.slot == slot), None)

    @property
    def generation_ids(self) -> dict[str, int]:
        """The exact answers judged, by slot."""
        return {e.slot: e.generation_id for e in self.entries}


class JudgementEntry(Base):
    """One judged answer: which generation, where it was shown, its rank (1 = best; equal
    ranks are ties; null when all were bad) and its optional 1-5 score."""

    __tablename__ = "judgement_entries"
    __table_args__ = (
        UniqueConstraint("judgement_id", "slot"),
        CheckConstraint("score IS NULL OR (score BETWEEN 1 AND 5)", name="score_range"),
        CheckConstraint("rank IS NULL OR rank >= 1", name="rank_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    judgement_id: Mapped[int] = mapped_column(
        ForeignKey("judgements.id", ondelete="CASCADE"), index=True
    )
    slot: Mapped[str] = mapped_column(String(1))
    # The exact answer judged, so regenerating later never changes what a judgement meant.
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[int | None] = mapped_column(Integer)
