"""Tables of prompt sets and batch runs; each run item's answers are ordinary generations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.generation.records import Generation

# A run's models take these slots, in the order given.
RUN_SLOTS = ("a", "b", "c", "d")
MIN_RUN_MODELS = 2
MAX_RUN_MODELS = 4


class RunStatus(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class PromptSet(Base):
    """A named list of prompts, imported once and run many times."""

    __tablename__ = "prompt_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    items: Mapped[list[PromptItem]] = relationship(
        back_populates="prompt_set", order_by="PromptItem.position", cascade="all, delete-orphan"
    )


class PromptItem(Base):
    """One prompt of a set, with an optional system prompt, tags and reference answer."""

    __tablename__ = "prompt_items"
    __table_args__ = (UniqueConstraint("prompt_set_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_set_id: Mapped[int] = mapped_column(
        ForeignKey("prompt_sets.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    # The item's id within its set (given in the file, or "item-N").
    key: Mapped[str] = mapped_column(String(100))
    prompt: Mapped[str] = mapped_column(Text)
    system: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {"type": "exact" | "contains" | "regex" | "choice", "value": ...}
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prompt_set: Mapped[PromptSet] = relationship(back_populates="items")


class Run(Base):
    """A prompt set run on 2-4 models with one set of sampling settings and a seed."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_set_id: Mapped[int] = mapped_column(
        ForeignKey("prompt_sets.id", ondelete="CASCADE"), index=True
    )
    # Model names in slot order (a, b, ...).
    models: Mapped[list[str]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    base_format: Mapped[str] = mapped_column(String(20))
    blind: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.QUEUED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    prompt_set: Mapped[PromptSet] = relationship()
    items: Mapped[list[RunItem]] = relationship(
        back_populates="run", order_by="RunItem.position", cascade="all, delete-orphan"
    )

    @property
    def slots(self) -> list[str]:
        """The slots of the run's models, in order."""
        return list(RUN_SLOTS[: len(self.models)])


class RunItem(Base):
    """One set item within a run; its generations are the models' answers (and retries)."""

    __tablename__ = "run_items"
    __table_args__ = (UniqueConstraint("run_id", "prompt_item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    prompt_item_id: Mapped[int] = mapped_column(
        ForeignKey("prompt_items.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    run: Mapped[Run] = relationship(back_populates="items")
    prompt_item: Mapped[PromptItem] = relationship()
    generations: Mapped[list[Generation]] = relationship(
        order_by=Generation.id, cascade="all, delete-orphan", passive_deletes=True
    )

    def current(self, slot: str) -> Generation | None:
        """The latest attempt in a slot."""
        attempts = [g for g in self.generations if g.slot == slot]
        return attempts[-1] if attempts else None
